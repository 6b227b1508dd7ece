"""A disruption (services.disruptions) without HTTP, over a real store (SQLite and PostgreSQL), a real
Temporal dev server and a worker: one push naming a flight starts one rescheduling flow for each product
on it, of every partner, and none twice when the push is repeated or a batch is retried."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.worker import Worker

from domain.disruptions import Disruption, FanOutPage, FlightRef, FlightScheduleChange, disruption_id_for
from domain.products import Segment
from domain.refusals import Refusal
from domain.rescheduling_flow import rescheduling_code
from services import accounts, disruptions
from services.bootstrap import Deps
from services.requester import Requester
from store.accounts import Principal
from store.flow_search import FlowFilter
from store.schema import products
from tests.api.conftest import flight
from tests.services.conftest import BOUND_S, Book, new_partner, refused

DEPARTURE = datetime(2031, 5, 20, 9, 0, tzinfo=timezone.utc) + timedelta(days=random.randrange(0, 300))


def on_flight(number: str, carrier: str = "ZZ") -> dict[str, Any]:
    body = flight(carrier=carrier)
    body["segments"][0].update(departure=DEPARTURE.isoformat(), arrival=(DEPARTURE + timedelta(hours=2)).isoformat(),
                               flight_number=number)
    return body


def delayed(number: str, change_id: str, hours: int = 3) -> FlightScheduleChange:
    new = DEPARTURE + timedelta(hours=hours)
    return FlightScheduleChange(
        change_id=change_id, kind="time_change",
        flight=FlightRef(carrier="ZZ", flight_number=number, departure_date=DEPARTURE.date()),
        proposed_segments=[Segment(origin="MAD", destination="CDG", departure=new, arrival=new + timedelta(hours=2),
                                   flight_number=number)])


async def until_started(deps: Deps, disruption_id: str, n: int) -> dict[str, int]:
    async with asyncio.timeout(BOUND_S):
        await deps.temporal.get_workflow_handle(disruption_id).result()
    return await deps.store.disruptions.flows_by_status(disruption_id)


async def test_one_push_starts_one_flow_per_product_of_every_partner(deps: Deps, worker: Worker, book: Book) -> None:
    number = f"ZZ{random.randrange(1000, 10000)}"
    acme, other = await new_partner(deps, "Acme"), await new_partner(deps, "Other")
    mine = [r["products"][0]["product_id"] for r in [await book(acme, on_flight(number)) for _ in range(3)]]
    theirs = (await book(other, on_flight(number), on_flight(number)))["products"]
    cancelled = (await book(other, on_flight(number)))["products"][0]["product_id"]
    async with deps.store.engine.begin() as conn:
        await conn.execute(products.update().where(products.c.product_id == cancelled).values(status="cancelled"))
    await book(acme, on_flight("ZZ9"))  # another flight
    supplier = (await accounts.register_supplier(deps, "ZZ Air", ["ZZ"])).account

    push = delayed(number, "delay-1")
    received = await disruptions.receive_disruption(deps, push, supplier)
    assert received.disruption_id.startswith("dsr_") and received.affected == 5
    by_status = await until_started(deps, received.disruption_id, 5)
    assert sum(by_status.values()) == 5

    expected = sorted(mine + [p["product_id"] for p in theirs])
    found, _end = await deps.store.flow_search.agents_page(FlowFilter(disruption_id=received.disruption_id), 50, None)
    assert sorted(f.product_id for f in found) == expected
    # Each under the code a one-product push of the same change names: the same time shift proposed.
    assert sorted(f.code for f in found) == sorted(rescheduling_code(p, "delay-1") for p in expected)
    flow = await deps.store.flows.flow(rescheduling_code(mine[0], "delay-1"))
    assert flow is not None
    proposed = flow.info["proposed_segments"][0]
    assert datetime.fromisoformat(proposed["departure"]) == DEPARTURE + timedelta(hours=3)

    # The same push again: the same disruption, nothing more started; a retried batch starts nothing either.
    again = await disruptions.receive_disruption(deps, push, supplier)
    assert (again.disruption_id, again.affected) == (received.disruption_id, 5)
    batch = await disruptions.start_batch(deps, FanOutPage(disruption_id=received.disruption_id, after_product_id=None, limit=100))
    assert batch.found == 5
    assert sum((await deps.store.disruptions.flows_by_status(received.disruption_id)).values()) == 5


async def test_progress_is_its_suppliers_and_the_agents_only(deps: Deps, worker: Worker, book: Book, agent: Requester,
                                                             partner: Requester) -> None:
    number = f"ZZ{random.randrange(1000, 10000)}"
    await book(partner, on_flight(number))
    supplier = (await accounts.register_supplier(deps, "ZZ Air", ["ZZ"])).account
    rival = (await accounts.register_supplier(deps, "Rival", ["ZZ"])).account
    received = await disruptions.receive_disruption(deps, delayed(number, "delay-2"), supplier)
    await until_started(deps, received.disruption_id, 1)
    own = await disruptions.progress(deps, Requester(Principal("supplier", supplier.supplier_id)), received.disruption_id)
    assert own.started == 1 and sum(own.by_status.values()) == 1
    assert (await disruptions.progress(deps, agent, received.disruption_id)).started == 1
    await refused(disruptions.progress(deps, Requester(Principal("supplier", rival.supplier_id)), received.disruption_id),
                  Refusal.NOT_FOUND)
    await refused(disruptions.progress(deps, partner, received.disruption_id), Refusal.NOT_FOUND)
    newest, _ = await disruptions.newest(deps, 200, None)
    assert received.disruption_id in [d.disruption_id for d in newest]


async def test_a_flight_of_another_carrier_is_not_the_suppliers(deps: Deps) -> None:
    supplier = (await accounts.register_supplier(deps, "AB Air", ["AB"])).account
    await refused(disruptions.receive_disruption(deps, delayed("ZZ101", "x"), supplier), Refusal.NOT_FOUND)


async def test_the_reconciler_starts_a_fan_out_an_intake_left_unstarted(deps: Deps, worker: Worker, book: Book,
                                                                        partner: Requester) -> None:
    number = f"ZZ{random.randrange(1000, 10000)}"
    [product_id] = [p["product_id"] for p in (await book(partner, on_flight(number)))["products"]]
    supplier = (await accounts.register_supplier(deps, "ZZ Air", ["ZZ"])).account
    push = delayed(number, "delay-3")
    # The intake recorded the disruption and died before starting its workflow.
    recorded = await deps.store.disruptions.record(Disruption(
        disruption_id=disruption_id_for(supplier.supplier_id, push.change_id), supplier_id=supplier.supplier_id,
        change=push, affected=1, created_at=datetime.now(timezone.utc) - disruptions.UNLAUNCHED_AFTER * 2))
    assert recorded.disruption_id in await deps.store.disruptions.unlaunched(datetime.now(timezone.utc), 1000)
    assert await disruptions.reconcile_launches(deps) >= 1
    assert sum((await until_started(deps, recorded.disruption_id, 1)).values()) == 1
    assert recorded.disruption_id not in await deps.store.disruptions.unlaunched(datetime.now(timezone.utc), 1000)
    flow = await deps.store.flows.flow(rescheduling_code(product_id, "delay-3"))
    assert flow is not None
