"""Alerts: findings deduplicated, muted (silences, inhibition), routed and grouped into incidents."""
