"""Every check a credit request runs (docs/settlement.md#credits) — reading credits, paying a change or a
checkout with one, taking a refund as one — called on the services without HTTP."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from domain.change_pricing import ChangeSearch
from domain.credit_ledger import Credit
from domain.money import Money
from domain.refusals import Refusal
from domain.rescheduling_flow import ScheduleChange
from services import cancellations, changes, credits, reschedulings
from services.bootstrap import Deps
from services.changes import ChangeBooked
from services.flow_start import StillWorking
from services.requester import Requester
from store.credit_records import CreditFilter
from tests.api.conftest import flight, hotel
from tests.services.conftest import Book, refused, until_history_has
from tests.store.test_credit_store import cancelled_to_credit

DAYS_AHEAD = 30


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


async def given_credit(deps: Deps, book: Book, owner: Requester, refund: str = "240.00",
                       at: datetime | None = None, currency: str = "EUR") -> Credit:
    """A credit the partner was given instead of a cancellation's refund, at ``at`` (now by default)."""
    reservation = await book(owner, flight(currency=currency))
    product = reservation["products"][0]
    record = cancelled_to_credit(owner.principal.principal_id, reservation["reservation_id"], product["product_id"], refund,
                                 at=at or datetime.now(timezone.utc), currency=currency)
    await deps.store.flows.record_flow(record)
    found = await deps.store.credits.credit(str(record.info["credit_id"]))
    assert found is not None
    return found


async def context_of(deps: Deps, partner: Requester, book: Book) -> Any:
    """A change context of a new flight of the partner, priced 54.00 (fare difference 24.00, fee 30.00)."""
    product_id = (await book(partner, flight(days_ahead=DAYS_AHEAD)))["products"][0]["product_id"]
    found = await changes.search_alternatives(deps, partner, product_id,
                                              ChangeSearch(departure_date=date.today() + timedelta(days=DAYS_AHEAD + 1)))
    return await changes.create_context(deps, partner, found[1][0].itinerary_id)


async def test_a_partner_pays_only_with_its_own_active_credit_in_the_currency_due(
    deps: Deps, partner: Requester, other_partner: Requester, book: Book
) -> None:
    credit = await given_credit(deps, book, partner)
    assert (await credits.check_payment(deps, partner, credit.credit_id, eur("10"))).credit_id == credit.credit_id
    await refused(credits.check_payment(deps, other_partner, credit.credit_id, eur("10")), Refusal.NOT_FOUND)
    await refused(credits.check_payment(deps, partner, "crd_doesnotexist", eur("10")), Refusal.NOT_FOUND)
    mismatch = await refused(credits.check_payment(deps, partner, credit.credit_id, Money.of("10", "CHF")),
                             Refusal.CREDIT_CURRENCY_MISMATCH)
    assert "EUR" in mismatch.detail and "CHF" in mismatch.detail

    # Past its expiry, even before the expiry is recorded (a worker down then), and once it is.
    old = await given_credit(deps, book, partner, at=datetime.now(timezone.utc) - deps.settings.credit_validity - timedelta(days=1))
    await refused(credits.check_payment(deps, partner, old.credit_id, eur("10")), Refusal.CREDIT_NOT_ACTIVE)
    assert await deps.store.credits.expire(old.credit_id, old.expires_at) == "expired"
    await refused(credits.check_payment(deps, partner, old.credit_id, eur("10")), Refusal.CREDIT_NOT_ACTIVE)


async def test_a_change_is_refused_before_the_flow_takes_a_credit_that_cannot_pay(
    deps: Deps, partner: Requester, other_partner: Requester, book: Book
) -> None:
    context = await context_of(deps, partner, book)
    theirs = await given_credit(deps, book, other_partner)
    await refused(changes.book_context(deps, partner, context.context_id, None, theirs.credit_id), Refusal.NOT_FOUND)
    francs = await given_credit(deps, book, partner, currency="CHF")
    await refused(changes.book_context(deps, partner, context.context_id, None, francs.credit_id),
                  Refusal.CREDIT_CURRENCY_MISMATCH)
    # Nothing was taken by the flow: no worker runs here, and the refusals came first.
    info = await deps.store.flows.flow(context.code)
    assert info is not None and info.status == "awaiting_booking"


async def test_a_credit_pays_what_it_can_of_a_change_and_then_is_used(
    deps: Deps, worker: Worker, partner: Requester, book: Book
) -> None:
    credit = await given_credit(deps, book, partner, refund="60.00")
    first = await changes.book_context(deps, partner, (await context_of(deps, partner, book)).context_id, None, credit.credit_id)
    assert isinstance(first, ChangeBooked) and first.info.credit_id == credit.credit_id and first.credit is not None
    assert (first.credit.paid_for(first.info.code), first.credit.remaining, first.credit.state) == (eur("54"), eur("6"), "active")

    second = await changes.book_context(deps, partner, (await context_of(deps, partner, book)).context_id, None, credit.credit_id)
    assert isinstance(second, ChangeBooked) and second.credit is not None
    assert (second.credit.paid_for(second.info.code), second.credit.remaining, second.credit.state) == (eur("6"), eur("0"), "used")
    # The same booking again answers the same, though the credit it named is used now.
    again = await changes.book_context(deps, partner, second.info.context_id or "", None, credit.credit_id)
    assert isinstance(again, ChangeBooked) and again.info.code == second.info.code
    third = await context_of(deps, partner, book)
    await refused(changes.book_context(deps, partner, third.context_id, None, credit.credit_id), Refusal.CREDIT_NOT_ACTIVE)


async def test_a_checkout_is_paid_with_a_credit(deps: Deps, worker: Worker, partner: Requester, agent: Requester,
                                                book: Book) -> None:
    credit = await given_credit(deps, book, partner, refund="100.00")
    reservation = await book(partner, {**flight(days_ahead=DAYS_AHEAD), "change_policy": {"changeable": True, "manual": True}})
    issued = await changes.issue_checkout(deps, agent, reservation["products"][0]["product_id"], "new dates", eur("40"), None)
    assert issued.checkout_id is not None
    prebooked = await changes.prebook(deps, partner, issued.checkout_id, reservation["reservation_id"])
    assert not isinstance(prebooked, StillWorking) and prebooked.checkout_context_id is not None

    booked = await changes.book_checkout(deps, partner, prebooked.checkout_context_id, "credit", credit.credit_id)
    assert isinstance(booked, ChangeBooked) and booked.credit is not None
    assert (booked.info.payment_method, booked.credit.paid_for(booked.info.code), booked.credit.remaining) == (
        "credit", eur("40"), eur("60"))


async def test_a_cancellation_refunds_into_a_credit(deps: Deps, worker: Worker, partner: Requester, book: Book) -> None:
    product_id = (await book(partner, flight(days_ahead=DAYS_AHEAD)))["products"][0]["product_id"]
    quote = await cancellations.quote(deps, partner, product_id)
    info = await cancellations.cancel(deps, partner, product_id, quote.quote_id, "credit")
    assert (info.status, info.refund_to, info.refund) == ("cancelled", "credit", eur("240"))
    credit = await credits.credit(deps, partner, info.credit_id or "")
    assert (credit.flow_code, credit.amount, credit.state) == (info.code, eur("240"), "active")
    assert credit.expires_at == info.credit_expires_at


async def test_only_the_refund_alternative_of_a_rescheduling_goes_into_a_credit(
    deps: Deps, worker: Worker, partner: Requester, book: Book
) -> None:
    product_id = (await book(partner, flight()))["products"][0]["product_id"]
    code = await reschedulings.receive_schedule_change(
        deps, ScheduleChange(change_id="chg-credit", product_id=product_id, kind="flight_cancelled"))
    await until_history_has(deps, code, EventType.EVENT_TYPE_TIMER_STARTED)
    wrong = await refused(reschedulings.accept(deps, partner, code, "rebook-1d", "credit"), Refusal.INVALID_FIELDS)
    assert wrong.errors == [{"field": "refund_to", "message": "credit goes only with the refund alternative"}]
    accepted = await reschedulings.accept(deps, partner, code, "refund", "credit")
    assert not isinstance(accepted, StillWorking) and accepted.credit_id is not None
    assert (await credits.credit(deps, partner, accepted.credit_id)).amount == eur("240")
    # The same choice again answers the same; the refund to the original payment now is another choice.
    assert await reschedulings.accept(deps, partner, code, "refund", "credit") == accepted
    await refused(reschedulings.accept(deps, partner, code, "refund"), Refusal.NOT_AWAITING_CHOICE)


async def test_a_partner_reads_its_own_credits_and_totals_agents_everyones(
    deps: Deps, partner: Requester, other_partner: Requester, agent: Requester, book: Book
) -> None:
    mine = await given_credit(deps, book, partner)
    theirs = await given_credit(deps, book, other_partner, refund="100.00")
    await refused(credits.credit(deps, partner, theirs.credit_id), Refusal.NOT_FOUND)
    assert (await credits.credit(deps, agent, theirs.credit_id)).credit_id == theirs.credit_id
    assert [c.credit_id for _, c in await credits.page(deps, partner, CreditFilter(), None, 10)] == [mine.credit_id]
    # Another partner's, asked by name: nothing (no hint that it exists).
    assert await credits.page(deps, partner, CreditFilter(partner_id=other_partner.principal.principal_id), None, 10) == []
    everyone = [c.credit_id for _, c in await credits.page(deps, agent, CreditFilter(), None, 100)]
    assert {mine.credit_id, theirs.credit_id} <= set(everyone)
    [own] = await credits.balances(deps, partner, None, None, None, 10)
    assert (own.partner_id, own.outstanding) == (partner.principal.principal_id, eur("240"))
    assert await credits.balances(deps, partner, other_partner.principal.principal_id, None, None, 10) == []
    totals = {b.partner_id: b.outstanding for b in await credits.balances(deps, agent, None, "EUR", None, 1000)}
    assert totals[other_partner.principal.principal_id] == eur("100")


async def test_a_hotel_cancelled_manually_may_refund_into_a_credit_when_the_quote_is_accepted(
    deps: Deps, worker: Worker, partner: Requester, agent: Requester, book: Book
) -> None:
    product_id = (await book(partner, hotel()))["products"][0]["product_id"]
    started = await cancellations.cancel(deps, partner, product_id, (await cancellations.quote(deps, partner, product_id)).quote_id)
    await until_history_has(deps, started.code, EventType.EVENT_TYPE_TIMER_STARTED)
    await cancellations.submit_quote(deps, agent, started.code, eur("100"), eur("500"), "hotel fee")
    decided = await cancellations.decide(deps, partner, started.code, "accept", "credit")
    assert not isinstance(decided, StillWorking)
    assert (decided.status, decided.refund_to) == ("cancelled", "credit") and decided.credit_id is not None
    assert (await credits.credit(deps, partner, decided.credit_id)).amount == eur("500")
    # Accepting again answers the same; naming the other destination now is not the same decision.
    assert await cancellations.decide(deps, partner, started.code, "accept") == decided
    await refused(cancellations.decide(deps, partner, started.code, "accept", "original_payment"), Refusal.NOT_AWAITING_DECISION)
