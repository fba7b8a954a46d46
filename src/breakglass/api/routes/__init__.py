"""The REST API's routers, one per noun; ``ROUTERS`` is the order they are mounted in."""

from fastapi import APIRouter

from breakglass.api.routes import events, health, metrics, tokens

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    events.router,
    tokens.router,
    metrics.router,
)
