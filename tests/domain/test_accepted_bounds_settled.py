"""Any reservation the input bounds accept (domain.input_bounds) is cancelled through the very decisions
the store takes in its transactions (issue 24): each product's ``cancelled`` transition as its workflow
records it, its money decided by ``domain.settlement.flow_transition`` on the reservation's ledger, as
a refund or as a credit. Properties:

- no decision raises (the arithmetic's ceiling, a Money bound, the VAT division) for any accepted
  amount, the bounds themselves included;
- the journal keeps its invariant (``domain.journal.invariant_violations``): refunds never exceed
  charges, each posted refund booked once, numbered without a gap;
- every amount booked, every VAT position and every event's data fits the stored columns: the journal's
  amount string, a credit's minor units in a 64-bit integer.

The store does the same on both databases: tests/store/test_accepted_bounds_recorded.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain import settlement
from domain.cancellation_flow import CancellationInfo
from domain.codes import FlowKind
from domain.credit_ledger import CREDIT_VALIDITY, credit_terms, given_as_credit
from domain.flow_info import FlowRecord
from domain.input_bounds import FROM_REQUEST
from domain.journal import Account, JournalEntry, PostedRefund, gapless, invariant_violations, transition_effects
from domain.money import Money
from domain.penalty import penalty_for, refund_for
from domain.positions import cancellation_positions
from domain.products import ReservationSpec
from domain.settlement import Counters, Ledger, SoldProduct
from tests.domain.test_input_bounds import AT, fits, reservations

# A credit's amounts are BIGINT minor units (store.schema.credits).
BIGINT_MAX = 2**63 - 1


def accepted(body: dict[str, Any]) -> ReservationSpec | None:
    try:
        return ReservationSpec.model_validate(body, context=FROM_REQUEST)
    except ValidationError:
        return None  # a sale over the bound: refused where it enters (test_input_bounds)


def cancelled(code: str, product_id: str, paid: Money, penalty: Money, refund_to: str) -> FlowRecord:
    refund = refund_for(paid, penalty)
    info = CancellationInfo(code=code, product_id=product_id, reservation_id="RES-1", partner_id="ptn_1",
                            status="cancelled", resolution="automatic", paid=paid, penalty=penalty, refund=refund,
                            **credit_terms(code, refund, refund_to, CREDIT_VALIDITY, AT))  # type: ignore[arg-type]
    return FlowRecord.of(info, FlowKind.CANCELLATION, AT, f"evt_{code}", "cancellation.completed")


@settings(max_examples=300, deadline=None)
@given(reservations(), st.lists(st.integers(-1000, 10_000), min_size=6, max_size=6),
       st.lists(st.sampled_from(["original_payment", "credit"]), min_size=6, max_size=6))
def test_any_accepted_reservation_is_cancelled_through_the_settlement_decisions(
    body: dict[str, Any], hours: list[int], refund_to: list[str]
) -> None:
    spec = accepted(body)
    if spec is None:
        return
    sold = [(f"PRD-{n}", product) for n, product in enumerate(spec.products)]
    entries: list[JournalEntry] = list(settlement.sale("RES-1", "ptn_1", sold).entries)
    credited: list[Money] = []
    counters = Counters(last_reference=0, last_number=0)
    posted: list[PostedRefund] = []
    for n, (product_id, product) in enumerate(sold):
        now = product.start - timedelta(hours=hours[n])
        paid = product.price
        penalty = penalty_for(product.cancellation_policy.tiers, paid, product.start - now)
        positions = cancellation_positions(code=f"CAN-{n}", product_id=product_id, reservation_id="RES-1",
                                           product=product, paid=paid, penalty=penalty, cancelled_at=now)
        for line in (positions.original_position, positions.cancellation_fee_position):
            assert all(fits(m) for m in (line.amount, line.vat_amount, line.net_amount))
            assert line.net_amount + line.vat_amount == line.amount
        record = cancelled(f"CAN-{n}", product_id, paid, penalty, refund_to[n])
        json.dumps(record.model_dump(mode="json"))  # the workflow's payload and the stored info
        effects = transition_effects(record)
        account = Account.of(entries, credited)
        credit = given_as_credit(record, effects.refund.amount if effects.refund is not None else None)
        if credit is not None:
            # Taken as a credit: the store issues it instead of posting the refund (store.credit_records).
            issued = settlement.credit_issue(credit, account, ["T1"], AT)
            assert issued is not None
            credited.append(issued.credit.amount)
            assert 0 < issued.credit.amount.minor <= BIGINT_MAX
            continue
        write = settlement.flow_transition(effects, SoldProduct(product_id, "RES-1", "ptn_1", product.model_dump(mode="json")),
                                           Ledger(account, counters), f"ref_{n}", AT)
        entries.extend(write.entries)
        counters = write.counters or counters
        if write.refund is not None and write.refund.state == "posted":
            assert write.refund.number is not None
            posted.append(PostedRefund(write.refund.refund_id, int(write.refund.number), write.refund.amount))
        for trigger in write.triggers:
            json.dumps(trigger.data)
    assert invariant_violations(entries, posted) == []
    assert gapless(p.number for p in posted)
    assert all(fits(entry.amount) for entry in entries)
    account = Account.of(entries, credited)
    for currency in account.currencies():
        assert account.left(currency).amount >= 0
