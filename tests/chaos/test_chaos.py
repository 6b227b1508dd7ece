"""Chaos: flows of every kind in flight while the gateway (twice, at several moments of the burst of
starts), the worker, the dev server and then everything at once are SIGKILLed and started again on
the same data, on SQLite and on PostgreSQL. Partners, agents and clients retry what they were doing
with the same Idempotency-Keys; some refunds are taken as credits that then pay for changes.
Afterwards every flow has finished exactly once, every partner's decision took effect (none refused
for good, none lost to ``no_response``) and the books and credits balance (tests/chaos/audit.py).

``make test`` runs a few dozen flows per database; ``make chaos`` runs ``AFTERSALES_CHAOS_FLOWS``
(250) with the same kills and prints the counts.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.chaos.audit import audit
from tests.chaos.journeys import Actors, plan
from tests.chaos.journeys import Client as Caller
from tests.chaos.stack import DEFAULT_PLAN, make_stack, progress_watcher

pytestmark = pytest.mark.e2e
FLOWS = int(os.environ.get("AFTERSALES_CHAOS_FLOWS", "36"))
CONCURRENCY = 12
ADMIN = {"Authorization": "Bearer sandbox-admin-key"}


async def _create(http: aiohttp.ClientSession, base: str, path: str, body: dict[str, str]) -> dict[str, str]:
    async with http.post(base + path, json=body, headers=ADMIN) as response:
        assert response.status == 201, await response.text()
        answer: dict[str, str] = await response.json()
        return answer


async def test_every_flow_finishes_once_whatever_is_killed(database_url: str, tmp_path: Path) -> None:
    stack = make_stack(tmp_path / "stack", database_url, AFTERSALES_SANDBOX_SUPPLIER_DELAY="1s",
                       AFTERSALES_SYNC_WAIT="5s")
    await stack.start()
    engine = create_async_engine(database_url)
    try:
        async with aiohttp.ClientSession() as http:
            partner = await _create(http, stack.base_url, "/v1/admin/partners", {"name": "Chaos Travel"})
            agent = await _create(http, stack.base_url, "/v1/admin/agents", {"name": "Grace"})
            tick, reached = progress_watcher(FLOWS)
            actors = Actors(Caller(stack, http, partner["api_key"]), Caller(stack, http, agent["api_key"]), tick)
            journeys = plan(FLOWS, uuid.uuid4().hex[:6])
            gate = asyncio.Semaphore(CONCURRENCY)

            async def run(journey, drive) -> None:  # type: ignore[no-untyped-def]
                async with gate:
                    await drive(actors, journey)

            async def kill_on_plan() -> None:
                for share, parts in DEFAULT_PLAN:
                    await reached(share)
                    await stack.crash(*parts)

            await asyncio.gather(kill_on_plan(), *[run(journey, drive) for journey, drive in journeys])

            temporal = await Client.connect(stack.temporal_target, data_converter=pydantic_data_converter)
            report = await audit(engine, temporal, partner["partner_id"], [journey for journey, _ in journeys])

        retries: Counter[str] = actors.partner.retries + actors.agent.retries
        print(f"\nchaos on {database_url.split(':')[0]}: {FLOWS} flows, kills {stack.kills}, "
              f"client retries {dict(retries)}, events {report.events}, credits {report.credits}, "
              f"decisions {dict(report.decisions)}")
        for outcome, count in sorted(report.flows.items()):
            print(f"  {count:4d}  {outcome}")
        assert report.problems == [], "\n".join(report.problems)
        # During an outage answers are 503 with Retry-After (or the connection drops), never a 500.
        assert retries["500"] == 0, retries
        # Every journey's flow, and the cancellations whose credits paid for changes.
        assert sum(report.flows.values()) == FLOWS + sum(len(journey.more) for journey, _ in journeys)
    finally:
        await stack.close()
        await engine.dispose()
