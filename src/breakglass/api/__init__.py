"""The REST API: FastAPI routers per noun, token auth with roles, server-sent events, metrics.

``breakglass.api.application.create_api(app)`` builds the ASGI application. This package's root
imports nothing, so that ``breakglass.store.tables`` can register the token table without FastAPI.
"""
