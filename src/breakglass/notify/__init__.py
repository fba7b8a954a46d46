"""Notifications: Apprise channels and signed webhooks, templated messages, retries, a send log."""
