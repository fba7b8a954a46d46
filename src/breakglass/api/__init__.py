"""The REST API: FastAPI routers per noun, token auth with roles, server-sent events, metrics."""
