"""Chaos for a disruption (docs/rescheduling.md#disruptions): a supplier pushes a flight's schedule change
affecting the products of two partners, and repeats the push, while the gateway (during the intake), the
worker (during the fan-out), the dev server and then everything at once are SIGKILLed and started again on
the same data, on SQLite and on PostgreSQL. Afterwards every affected product has exactly one rescheduling
flow, named for the disruption, that reached the partner (``rescheduling.detected`` once), the fan-out
counted each product once, and no other product was touched.

``make test`` books ``AFTERSALES_CHAOS_DISRUPTED`` (120: two batches of the fan-out) products on the
flight; ``make chaos`` runs it with the flows suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.rescheduling_flow import RESCHEDULING_DETECTED
from domain.signature import sign
from tests.chaos.journeys import ANSWER_S, STEP_S
from tests.chaos.journeys import Client as Caller
from tests.chaos.stack import Stack, make_stack

pytestmark = pytest.mark.e2e
AFFECTED = int(os.environ.get("AFTERSALES_CHAOS_DISRUPTED", "120"))
PER_RESERVATION = 20
ADMIN = {"Authorization": "Bearer sandbox-admin-key"}
RESULT_S = 240.0


def on_flight(number: str, departure: datetime) -> dict[str, Any]:
    return {
        "kind": "flight", "carrier": "ZZ",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": departure.isoformat(),
                      "arrival": (departure + timedelta(hours=2)).isoformat(), "flight_number": number}],
        "price": {"amount": "240.00", "currency": "EUR"}, "vat_rate": "0.081",
        "cancellation_policy": {"mode": "automatic", "tiers": [{"hours_before_start": 168, "penalty_percent": "50"}]},
    }


async def _admin_create(http: aiohttp.ClientSession, base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(base + path, json=body, headers=ADMIN) as response:
        assert response.status == 201, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def signed_push(stack: Stack, http: aiohttp.ClientSession, waiter: Caller, supplier: dict[str, Any],
                      body: dict[str, Any], retries: Counter[str]) -> dict[str, Any]:
    """Push until answered: signed afresh at each attempt, as a supplier's client re-sends."""
    raw = json.dumps(body).encode()
    async with asyncio.timeout(STEP_S):
        while True:
            headers = {"Authorization": f"Bearer {supplier['api_key']}", "Content-Type": "application/json",
                       "Aftersales-Signature": sign(supplier["signing_secret"], int(time.time()), raw)}
            try:
                async with http.post(stack.base_url + "/v1/supplier/schedule-changes", data=raw, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=ANSWER_S)) as response:
                    answer: dict[str, Any] = await response.json(content_type=None)
                    if response.status < 500:
                        assert response.status == 202, answer
                        return answer
                    retries[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as error:
                retries[type(error).__name__] += 1
            await waiter._after_failure()


async def test_every_affected_product_gets_one_flow_whatever_is_killed(database_url: str, tmp_path: Path) -> None:
    stack = make_stack(tmp_path / "stack", database_url, AFTERSALES_SYNC_WAIT="5s")
    await stack.start()
    engine = create_async_engine(database_url)
    retries: Counter[str] = Counter()
    try:
        async with aiohttp.ClientSession() as http:
            base = stack.base_url
            partners = [await _admin_create(http, base, "/v1/admin/partners", {"name": name}) for name in ("Acme", "Globex")]
            supplier = await _admin_create(http, base, "/v1/admin/suppliers", {"name": "ZZ Air", "carriers": ["ZZ"]})
            number = f"ZZ{random.randrange(1000, 10000)}"
            departure = (datetime.now(timezone.utc) + timedelta(days=40)).replace(microsecond=0)
            affected: list[str] = []
            for i in range(0, AFFECTED, PER_RESERVATION):
                partner = partners[(i // PER_RESERVATION) % 2]
                caller = Caller(stack, http, partner["api_key"])
                status, body = await caller.call("POST", "/v1/sandbox/reservations", f"book-{number}-{i}", {
                    "travellers": [{"traveller_id": "T1", "name": "Ada Lovelace"}],
                    "products": [on_flight(number, departure)] * min(PER_RESERVATION, AFFECTED - i)})
                assert status == 201, body
                affected += [p["product_id"] for p in body["products"]]
            # The same flight the next day: not affected.
            status, other_day = await Caller(stack, http, partners[0]["api_key"]).call(
                "POST", "/v1/sandbox/reservations", f"book-{number}-next",
                {"travellers": [{"traveller_id": "T1", "name": "Ada Lovelace"}],
                 "products": [on_flight(number, departure + timedelta(days=1))]})
            assert status == 201, other_day

            new = departure + timedelta(hours=5)
            push = {"change_id": f"dly-{number}", "kind": "time_change",
                    "flight": {"carrier": "ZZ", "flight_number": number, "departure_date": departure.date().isoformat()},
                    "proposed_segments": [{"origin": "MAD", "destination": "CDG", "departure": new.isoformat(),
                                           "arrival": (new + timedelta(hours=2)).isoformat(), "flight_number": number}]}
            waiter = Caller(stack, http, supplier["api_key"])

            # The gateway dies while the push is being received; the supplier's client pushes again.
            first, _ = await asyncio.gather(signed_push(stack, http, waiter, supplier, push, retries), stack.crash("gateway"))
            assert first["affected"] == AFFECTED
            disruption_id = first["disruption_id"]
            # The worker dies during the fan-out, the server and then everything after it; the supplier repeats its push.
            for parts in (("worker",), ("gateway",), ("temporal",), ("temporal", "worker", "gateway")):
                await stack.crash(*parts)
                again = await signed_push(stack, http, waiter, supplier, push, retries)
                assert (again["disruption_id"], again["affected"]) == (disruption_id, AFFECTED)

            temporal = await Client.connect(stack.temporal_target, data_converter=pydantic_data_converter)
            fan_out = temporal.get_workflow_handle(disruption_id)
            assert await asyncio.wait_for(fan_out.result(), RESULT_S) == AFFECTED

            problems = await _audit(engine, temporal, disruption_id, affected, other_day["products"][0]["product_id"])
        print(f"\ndisruption chaos on {database_url.split(':')[0]}: {AFFECTED} products, kills {stack.kills}, "
              f"push retries {dict(retries)}")
        assert problems == [], "\n".join(problems)
        assert retries["500"] == 0, retries
    finally:
        await stack.close()
        await engine.dispose()


async def _audit(engine: Any, temporal: Client, disruption_id: str, affected: list[str], untouched: str) -> list[str]:
    """Exactly one rescheduling flow per affected product, of this disruption, each told to its partner once."""
    problems: list[str] = []
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT code, product_id, disruption_id FROM flows WHERE kind = 'rescheduling' AND product_id IN "
            "(SELECT product_id FROM flight_legs) AND (disruption_id = :d OR product_id = :u)"),
            {"d": disruption_id, "u": untouched})).all()
    per_product = Counter(row.product_id for row in rows)
    for product_id in affected:
        if per_product[product_id] != 1:
            problems.append(f"{product_id}: {per_product[product_id]} rescheduling flows")
    if per_product[untouched]:
        problems.append(f"{untouched} (the next day's flight) was rescheduled")
    codes = [row.code for row in rows]
    gate = asyncio.Semaphore(20)

    async def told(code: str) -> None:
        """The flow offers its alternatives (its decision timer starts once ``rescheduling.detected`` is stored)."""
        async with gate:
            history = temporal.get_workflow_handle(code).fetch_history_events(wait_new_event=True)
            try:
                async with asyncio.timeout(RESULT_S):
                    async for event in history:
                        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                            break
            except TimeoutError:
                problems.append(f"{code}: never offered its alternatives")
            described = await temporal.get_workflow_handle(code).describe()
            if described.status != WorkflowExecutionStatus.RUNNING:
                problems.append(f"{code}: {described.status}")

    await asyncio.gather(*(told(code) for code in codes))
    async with engine.connect() as conn:
        detected = Counter((await conn.execute(sa.text(
            "SELECT e.flow_code FROM events e JOIN flows f ON f.code = e.flow_code "
            "WHERE f.disruption_id = :d AND e.type = :t"), {"d": disruption_id, "t": RESCHEDULING_DETECTED})).scalars())
    for code in codes:
        if detected[code] != 1:
            problems.append(f"{code}: {detected[code]} {RESCHEDULING_DETECTED} events")
    return problems
