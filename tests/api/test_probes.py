"""``/readyz`` and ``/livez``: public, 200 when every check passes, 503 naming the failing one."""

from __future__ import annotations

from typing import Any

import httpx

from breakglass.app import App
from breakglass.health import CheckResult


async def test_readyz_answers_without_a_token_and_reports_the_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    # no stage consumes here: the bus check has no consumer to ask about
    assert response.json() == {"status": "ok", "checks": {"store": "ok", "bus": "ok"}}
    live = await client.get("/livez")
    assert live.status_code == 200
    assert live.json()["status"] == "ok"


async def test_a_failing_check_makes_readyz_503_and_says_which(client: httpx.AsyncClient, app: App) -> None:
    async def behind() -> CheckResult:
        return CheckResult(False, "40 blocks behind")

    app.health.add_readiness("follower", behind)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"store": "ok", "bus": "ok", "follower": "fail: 40 blocks behind"}


async def test_a_store_that_is_not_migrated_is_not_ready(client: httpx.AsyncClient, app: App) -> None:
    store = app.components.store
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE alembic_version")
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["store"].startswith("fail: ")


async def test_readyz_answers_while_api_reads_hold_every_pooled_connection(
    client: httpx.AsyncClient, app: App
) -> None:
    """The store check has its own connection: a read burst that takes the pool (a load test saw one
    503 at machine load 15) leaves the probe its answer."""
    engine = app.components.store.engine
    pool: Any = engine.pool
    held = [await engine.connect() for _ in range(pool.size() + pool._max_overflow)]
    try:
        assert pool.checkedout() == len(held)
        response = await client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json()["checks"]["store"] == "ok"
    finally:
        for conn in held:
            await conn.close()


async def test_the_probes_are_listed_in_the_public_spec(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/readyz", "/livez"} <= set(spec["paths"])
