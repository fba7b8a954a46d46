"""Incidents: lifecycle, participants, tasks, the hash-chained timeline, actions, post-mortems."""
