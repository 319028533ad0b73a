"""A tick that fails as a whole is never silent (issue #15): /healthz says degraded and a metric
counts the failures in a row, until a tick succeeds again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api import create_app
from dispatch import Dispatcher
from dispatch.matching import OptimizingPolicy
from tests.api.conftest import ADMIN, Clock, auth, make_settings, metric, place, seed

pytestmark = pytest.mark.anyio


class _Switchable(OptimizingPolicy):
    broken = False

    def decide(self, *args: Any, **kwargs: Any) -> Any:
        if self.broken:
            raise ZeroDivisionError("a bug in the policy itself")
        return super().decide(*args, **kwargs)


async def test_failing_ticks_make_healthz_degraded_and_are_counted(clock: Clock) -> None:
    policy = _Switchable()
    app = create_app(make_settings(), dispatcher=Dispatcher(policy=policy), clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as client:
        await seed(client)
        assert (await place(client, "H-1")).status_code == 201
        policy.broken = True
        for n in (1, 2):
            r = await client.post("/v1/dispatch/tick", headers=auth(ADMIN))
            assert r.status_code == 500 and r.json()["code"] == "internal-error"
            assert "ZeroDivisionError" not in r.text  # logged, not shown
            health = (await client.get("/healthz")).json()
            assert health["status"] == "degraded" and health["failing_ticks"] == n
        metrics = (await client.get("/metrics", headers=auth(ADMIN))).text
        assert metric(metrics, "dispatch_tick_failures_in_a_row") == 2
        assert metric(metrics, "dispatch_ticks_total", trigger="admin", outcome="error") == 2
        policy.broken = False
        assert (await client.post("/v1/dispatch/tick", headers=auth(ADMIN))).status_code == 200
        health = (await client.get("/healthz")).json()
        assert health["status"] == "ok" and health["failing_ticks"] == 0
        metrics = (await client.get("/metrics", headers=auth(ADMIN))).text
        assert metric(metrics, "dispatch_tick_failures_in_a_row") == 0
