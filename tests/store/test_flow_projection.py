"""The flows index as a projection of the workflows, on SQLite and PostgreSQL: it never goes back to
an older transition, a flow's start input is kept for the reconciler, and a quote is used once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from domain.codes import FlowKind
from domain.flow_info import FlowRecord
from store.flow_index import FlowInProgress, QuoteUsed
from store.quotes import Quote
from store.repositories import Store

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def record(code: str, *statuses: str, product_id: str = "PRD-P1", terminal: bool = False) -> FlowRecord:
    """The record of a flow whose history is ``statuses`` (its version is their number)."""
    history = [{"at": NOW.isoformat(), "event": status} for status in statuses]
    status = statuses[-1] if statuses else "processing"
    return FlowRecord(
        code=code, kind=FlowKind.CANCELLATION, product_id=product_id, reservation_id="RES-1", partner_id="ptn_1",
        status=status, terminal=terminal, info={"code": code, "status": status, "history": history}, at=NOW,
    )


async def test_an_older_transition_never_overwrites_a_newer_one(store: Store) -> None:
    await store.flows.open(record("CAN-PROJ0001"), {"any": "input"})
    await store.flows.record_flow(record("CAN-PROJ0001", "awaiting_agent_quote", "awaiting_partner_decision"))
    # A late retry of the first transition's activity commits after the second one.
    await store.flows.record_flow(record("CAN-PROJ0001", "awaiting_agent_quote"))
    flow = await store.flows.flow("CAN-PROJ0001")
    assert flow is not None and flow.status == "awaiting_partner_decision"
    # The same transition again (a retry) is harmless.
    await store.flows.record_flow(record("CAN-PROJ0001", "awaiting_agent_quote", "awaiting_partner_decision"))
    flow = await store.flows.flow("CAN-PROJ0001")
    assert flow is not None and len(flow.info["history"]) == 2


async def test_a_flow_is_unstarted_until_its_workflow_records(store: Store) -> None:
    await store.flows.open(record("CAN-PROJ0002", product_id="PRD-P2"), {"code": "CAN-PROJ0002"}, "partner:ptn_1")
    later = NOW + timedelta(days=3650)
    assert "CAN-PROJ0002" in [f.code for f in await store.flows.unstarted(later, 1000)]
    assert await store.flows.start_input("CAN-PROJ0002", "partner:ptn_1") == {"code": "CAN-PROJ0002"}
    assert await store.flows.start_input("CAN-PROJ0002", "partner:ptn_other") is None
    await store.flows.record_flow(record("CAN-PROJ0002", "processing", product_id="PRD-P2"))
    assert "CAN-PROJ0002" not in [f.code for f in await store.flows.unstarted(later, 1000)]


async def test_a_flow_opened_as_processing_is_unstarted_until_its_workflow_records(store: Store) -> None:
    """An automatic cancellation is opened with ``processing`` in its history (the gateway records it):
    the reconciler still finds it until the workflow's first record (``cancelled`` here)."""
    await store.flows.open(record("CAN-PROJ0090", "processing", product_id="PRD-P90"), {"code": "CAN-PROJ0090"})
    later = NOW + timedelta(days=3650)
    assert "CAN-PROJ0090" in [f.code for f in await store.flows.unstarted(later, 1000)]
    flow = await store.flows.flow("CAN-PROJ0090")
    assert flow is not None and flow.status == "processing" and len(flow.info["history"]) == 1
    await store.flows.record_flow(record("CAN-PROJ0090", "processing", "cancelled", product_id="PRD-P90", terminal=True))
    assert "CAN-PROJ0090" not in [f.code for f in await store.flows.unstarted(later, 1000)]
    flow = await store.flows.flow("CAN-PROJ0090")
    assert flow is not None and flow.status == "cancelled"


async def test_opening_again_is_the_same_flow(store: Store) -> None:
    assert await store.flows.open(record("CAN-PROJ0003", product_id="PRD-P3"), {}) is True
    assert await store.flows.open(record("CAN-PROJ0003", product_id="PRD-P3"), {}) is False
    with pytest.raises(FlowInProgress):
        await store.flows.open(record("CAN-PROJ0004", product_id="PRD-P3"), {})


@pytest.mark.parametrize("contenders", [20])
async def test_a_quote_opens_one_flow_under_concurrency(store: Store, contenders: int) -> None:
    """Each contender would take a different product's lock; the quote alone decides."""
    await store.quotes.save(Quote(
        quote_id="qt_once", product_id="PRD-Q", partner_id="ptn_1", resolution="automatic",
        paid={"amount": "1.00", "currency": "EUR"}, penalty=None, refund=None, created_at=NOW, expires_at=NOW))

    async def contend(i: int) -> str:
        try:
            await store.flows.open(record(f"CAN-QUOTE{i:03d}", product_id=f"PRD-Q{i}"), {}, quote_id="qt_once")
            return "opened"
        except QuoteUsed:
            return "refused"

    outcomes = await asyncio.gather(*[contend(i) for i in range(contenders)])
    assert sorted(outcomes) == ["opened"] + ["refused"] * (contenders - 1)


async def test_the_reconciler_pages_through_unstarted_flows_oldest_first(store: Store) -> None:
    """Each round goes on after the last flow the round before saw (services.flow_start.ReconcilerPass): flows
    whose workflows run without having recorded yet never hide the ones opened after them."""
    base = datetime(2091, 1, 1, tzinfo=timezone.utc)  # after every other test's flows
    codes = ["CAN-PAGE0003", "CAN-PAGE0001", "CAN-PAGE0002"]
    for n, code in enumerate(codes):
        opened = record(code, product_id=f"PRD-PAGE{n}").model_copy(update={"at": base + timedelta(seconds=n // 2)})
        await store.flows.open(opened, {"code": code})
    before = base + timedelta(days=1)
    seen, after = [], (base - timedelta(microseconds=1), "")
    while page := await store.flows.unstarted(before, 2, after):
        seen += [flow.code for flow in page]
        after = (page[-1].created_at, page[-1].code)
    # Opening time, then code: the two opened at the same instant in code order.
    assert seen == ["CAN-PAGE0001", "CAN-PAGE0003", "CAN-PAGE0002"]
