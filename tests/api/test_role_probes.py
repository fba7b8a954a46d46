"""A ``serve --role`` process without the ``api`` role (``api/probes.py``): ``/readyz`` and ``/livez``
with this process's checks and no token, ``/metrics`` with a viewer token, and nothing of the API."""

from __future__ import annotations

import httpx

from breakglass.api.auth import Role
from breakglass.api.probes import probes_only
from breakglass.app import App


async def test_a_process_without_the_api_role_serves_its_probes_and_metrics_and_no_api(
    app: App, tokens: dict[Role, str]
) -> None:
    transport = httpx.ASGITransport(app=probes_only(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and {"store", "bus"} <= set(ready.json()["checks"])
        assert (await client.get("/livez")).status_code == 200

        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer bgt_nope"})).status_code == 401
        peer = {"Authorization": f"Bearer {tokens[Role.PEER]}"}
        assert (await client.get("/metrics", headers=peer)).status_code == 403
        viewer = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
        metrics = await client.get("/metrics", headers=viewer)
        assert metrics.status_code == 200 and "breakglass_ready" in metrics.text

        for path in ("/api/v1/incidents", "/", "/openapi.json", "/docs"):
            assert (await client.get(path, headers=viewer)).status_code == 404, path
