"""After the chaos: every flow finished, and the store agrees with the workflows.

Nothing lost (every flow terminal, every terminal flow's event there), nothing twice (no product
cancelled by two flows, no event twice), nothing ahead (no event announcing a state the workflow
does not have, the projection equal to the workflow's final state), no lock left behind, no
partner's decision lost (every one taken or answered "retry later", the flow ending as the last one
taken says, never ``no_response`` after one: issue 24, finding 4). The books
balance: every reservation's journal (docs/settlement.md#the-invariant), every credit
(amount = redeemed + expired + remaining, remaining ≥ 0, each redemption booked once), and every
refund taken as a credit issued exactly one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from domain import credit_ledger
from domain.credit_ledger import CREDIT_EXPIRED, CREDIT_ISSUED, CREDIT_REDEEMED
from domain.flow_info import is_terminal
from domain.journal import invariant_violations
from store.repositories import store_over
from store.schema import events, flows, product_locks, products, reservations
from tests.chaos.journeys import Journey

RESULT_S = 240.0

# The trigger each status emits when a flow reaches it (docs/triggers.md).
EVENT_OF_STATUS: dict[str, dict[str, str]] = {
    "cancellation": {
        "awaiting_partner_decision": "cancellation.quoted", "cancelled": "cancellation.completed",
        "rejected": "cancellation.rejected", "no_response": "cancellation.no_response",
        "expired": "cancellation.expired", "failed": "cancellation.failed",
    },
    "change": {
        "checkout_issued": "change.checkout_issued", "modified": "change.completed",
        "expired": "change.expired", "failed": "change.failed",
    },
    "rescheduling": {
        "awaiting_partner_action": "rescheduling.detected", "accepted": "rescheduling.accepted",
        "auto_accepted": "rescheduling.auto_accepted", "failed": "rescheduling.failed",
        "obsolete": "rescheduling.obsolete",
    },
    "special_request": {"confirmed": "special_request.confirmed", "declined": "special_request.declined"},
}


# What a manual cancellation ends as once the partner's decision is taken (failed: the supplier refused).
OUTCOMES_OF_DECISION = {"accept": ("cancelled", "failed"), "reject": ("rejected",)}


def decision_problems(journey: Journey, final: dict[str, Any]) -> list[str]:
    """What went wrong with the partner's decisions of ``journey``, whose flow ended as ``final``: a
    decision refused for good (a final 409: the client had to give it up), none taken, or a flow whose
    outcome or recorded decision is not the last decision taken (``no_response`` after one)."""
    if not journey.decisions:
        return []
    name = f"{journey.name} {journey.code}"
    problems = [f"{name}: decision {decision} refused for good (409), it must be taken or answered retry later"
                for decision, status in journey.decisions if status == 409]
    taken = [decision for decision, status in journey.decisions if status in (200, 202)]
    if not taken:
        return [*problems, f"{name}: no decision taken, answers {journey.decisions}"]
    last, status = taken[-1], final.get("status")
    if status not in OUTCOMES_OF_DECISION[last] or final.get("decision") != last:
        problems.append(f"{name}: ended {status} with decision {final.get('decision')} after the partner's "
                        f"{last} was taken (answers {journey.decisions})")
    return problems


REFUND_POSTED = "refund.posted"
# A credit's events, one per movement, named for the flow that caused it (none for an expiry).
CREDIT_EVENT = {"issued": CREDIT_ISSUED, "redeemed": CREDIT_REDEEMED, "expired": CREDIT_EXPIRED}


def refunds_posted(kind: str, info: dict[str, Any]) -> int:
    """A flow posts its own refund once (docs/settlement.md): a cancellation that ends cancelled with
    something to refund, a rescheduling applied with the refund alternative; unless the partner took
    it as a credit."""
    if info.get("refund_to") == "credit":
        return 0
    if kind == "cancellation" and info["status"] == "cancelled":
        return 1 if info.get("refund") and Decimal(info["refund"]["amount"]) > 0 else 0
    if kind == "rescheduling" and info["status"] in ("accepted", "auto_accepted"):
        return 1 if info.get("alternative_id") == "refund" else 0
    return 0


@dataclass
class Report:
    flows: Counter[str] = field(default_factory=Counter)
    events: int = 0
    credits: int = 0
    # The partners' decisions by final answer ("accept 200", "reject 202", ...).
    decisions: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


async def audit(engine: AsyncEngine, temporal: Client, partner_id: str, journeys: list[Journey]) -> Report:
    report = Report()
    for journey in journeys:
        report.check(journey.code is not None, f"{journey.name}: the journey never got its flow code")

    # Every flow the store knows of (journeys' and any a retry might have started) finishes in its
    # workflow; the store is read once they all have, so it must then agree with them.
    async def final(code: str) -> dict[str, Any]:
        result: dict[str, Any] = await temporal.get_workflow_handle(code).result()
        return result

    async with engine.connect() as conn:
        codes = sorted((await conn.execute(sa.select(flows.c.code).where(flows.c.partner_id == partner_id))).scalars())
    finals = dict(zip(codes, await asyncio.wait_for(asyncio.gather(*[final(c) for c in codes]), RESULT_S),
                      strict=True))

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(flows).where(flows.c.partner_id == partner_id))).all()
        event_rows = (await conn.execute(
            sa.select(events.c.flow_code, events.c.type, events.c.payload).where(events.c.partner_id == partner_id)
        )).all()
        locks = (await conn.execute(
            sa.select(product_locks.c.product_id, product_locks.c.flow_code)
            .join(products, products.c.product_id == product_locks.c.product_id)
            .join(reservations, reservations.c.reservation_id == products.c.reservation_id)
            .where(reservations.c.partner_id == partner_id)
        )).all()
        cancelled = (await conn.execute(
            sa.select(products.c.product_id, products.c.cancelled_by)
            .join(reservations, reservations.c.reservation_id == products.c.reservation_id)
            .where(reservations.c.partner_id == partner_id, products.c.status == "cancelled")
        )).all()

    by_code = {row.code: row for row in rows}
    for journey in journeys:
        if journey.code is None:
            continue
        got = finals.get(journey.code, {}).get("status")
        report.check(got == journey.expected, f"{journey.name} {journey.code}: ended {got}, expected {journey.expected}")
        report.problems += decision_problems(journey, finals.get(journey.code, {}))
        report.decisions.update(f"{decision} {status}" for decision, status in journey.decisions)
    started = sum(1 + len(j.more) for j in journeys if j.code)
    report.check(len(rows) == started, f"{len(rows)} flows in the store for the {started} the journeys started: "
                                       "a retry started a second flow")

    books = store_over(engine)
    credits = await books.credits.of_partner(partner_id)
    credit_events: dict[str, list[str]] = {}
    for credit in credits:
        for movement in credit.movements:
            credit_events.setdefault(movement.flow_code or "", []).append(CREDIT_EVENT[movement.kind])

    for code, info in finals.items():
        row = by_code[code]
        report.flows[f"{row.kind} {info['status']}"] += 1
        report.check(is_terminal(info["status"]), f"{code}: not finished ({info['status']})")
        report.check(row.status == info["status"] and row.info["history"] == info["history"],
                     f"{code}: the store shows {row.status}, the workflow {info['status']}")
        history = [entry["event"] for entry in info["history"]]
        expected = sorted([EVENT_OF_STATUS[row.kind][s] for s in history if s in EVENT_OF_STATUS[row.kind]]
                          + [REFUND_POSTED] * refunds_posted(row.kind, info) + credit_events.get(code, []))
        got_events = sorted(e.type for e in event_rows if e.flow_code == code)
        report.check(got_events == expected, f"{code}: events {got_events}, its workflow's history says {expected}")
        if info.get("credit_id") and row.kind != "change":  # it gave its refund as a credit: exactly that one
            issued = [c.credit_id for c in credits if c.flow_code == code]
            report.check(issued == [info["credit_id"]], f"{code}: took its refund as {info['credit_id']}, issued {issued}")
        for event in (e for e in event_rows if e.flow_code == code and e.type not in (REFUND_POSTED, *CREDIT_EVENT.values())):
            report.check(event.payload["data"]["status"] in history,
                         f"{code}: event {event.type} announces {event.payload['data']['status']}, not in {history}")
    report.events = len(event_rows)

    entries = []
    for reservation_id in sorted({row.reservation_id for row in rows}):
        booked = await books.payments.entries(reservation_id)
        entries += booked
        for problem in invariant_violations(booked, await books.refunds.posted(reservation_id)):
            report.check(False, f"{reservation_id}: {problem}")
    for problem in credit_ledger.violations(credits, entries):
        report.check(False, problem)
    report.credits = len(credits)

    report.check(not locks, f"locks left behind: {[tuple(lock) for lock in locks]}")
    def cancels(code: str, info: dict[str, Any]) -> bool:
        kind = by_code[code].kind
        return (kind == "cancellation" and info["status"] == "cancelled") or (
            kind == "rescheduling" and info.get("alternative_id") == "refund" and is_terminal(info["status"])
            and info["status"] != "failed")

    for product_id, cancelled_by in cancelled:
        by = [c for c, info in finals.items() if by_code[c].product_id == product_id and cancels(c, info)]
        report.check(by == [cancelled_by], f"{product_id}: cancelled by {cancelled_by}, flows say {by}")
    return report
