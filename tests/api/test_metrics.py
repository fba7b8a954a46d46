"""``/metrics``: Prometheus text with request counts labelled by route template, never by raw path."""

from __future__ import annotations

import httpx

from breakglass.api.auth import Role


async def test_requests_are_counted_by_route_template_not_by_the_path_a_caller_chose(
    client: httpx.AsyncClient, tokens: dict[Role, str], incident_id: str
) -> None:
    headers = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
    assert (await client.get(f"/api/v1/incidents/{incident_id}", headers=headers)).status_code == 200
    assert (await client.get("/api/v1/incidents/inc-probe-123", headers=headers)).status_code == 404
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'route="/api/v1/incidents/{incident_id}",status="200"' in text
    assert 'route="/api/v1/incidents/{incident_id}",status="404"' in text
    assert incident_id not in text and "inc-probe-123" not in text
