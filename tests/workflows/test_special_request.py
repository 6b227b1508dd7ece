"""The special-request flow (docs/api.md#special-requests) on the time-skipping server: the airline's answer after its delay."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.special_request_flow import SpecialRequestAsk
from tests.workflows.change_fakes import (
    DECLINED,
    PRODUCT_ID,
    SUPPLIER_DELAY,
    ChangeHarness,
    change_harness,
    finish,
    special_request,
)

CODE = "SR-TEST0001"


@pytest.fixture
async def h(env: WorkflowEnvironment) -> AsyncIterator[ChangeHarness]:
    async with change_harness(env.client) as harness:
        yield harness


async def test_airline_confirms_after_its_delay(h: ChangeHarness) -> None:
    info = await finish(await special_request(h, CODE))

    assert info.status == "confirmed" and info.request_id == CODE
    assert [e.event for e in info.history] == ["requested", "confirmed"]
    # A durable timer, skipped by the server: the answer is asked for only once the delay has passed.
    assert info.history[-1].at - info.history[0].at >= SUPPLIER_DELAY
    assert h.supplier.asked == [
        SpecialRequestAsk(request_id=CODE, product_id=PRODUCT_ID, option_code="WCHR", traveller_id="T1",
                          note="aisle please")
    ]
    assert h.store.event_types(CODE) == [None, "special_request.confirmed"]
    assert [r.terminal for r in h.store.records if r.code == CODE] == [False, True]


async def test_airline_declines_with_its_reason(h: ChangeHarness) -> None:
    info = await finish(await special_request(h, CODE, DECLINED))

    assert info.status == "declined" and info.reason == DECLINED.reason
    assert h.store.event_types(CODE) == [None, "special_request.declined"]
    assert h.store.records[-1].info["option"] == {"code": "WCHR", "name": "Wheelchair", "price": None}
