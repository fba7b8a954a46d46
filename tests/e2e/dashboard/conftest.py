"""Fixtures of the browser tests: the live server and chromium (defined in ``dashboard_support``)."""

from dashboard_support import browser, live_server, page

__all__ = ["browser", "live_server", "page"]
