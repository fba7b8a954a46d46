"""The dashboard: server-rendered Jinja2 pages with HTMX and live updates over server-sent events."""

from breakglass.web.mount import mount_dashboard

__all__ = ["mount_dashboard"]
