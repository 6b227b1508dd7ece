"""Every check a change or checkout request runs, called on ``services.changes`` without HTTP."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from temporalio.worker import Worker

from domain.change_flow import CHECKOUT_CONTEXT_PREFIX, public_id
from domain.change_pricing import ChangeSearch
from domain.money import Money
from domain.refusals import Refusal
from services import cancellations, changes
from services.bootstrap import Deps
from services.changes import ChangeBooked
from services.flow_start import StillWorking
from services.requester import Requester
from tests.api.conftest import flight, hotel
from tests.services.conftest import Book, product_of, refused, with_settings

DAYS_AHEAD = 30


def manual_flight() -> dict[str, Any]:
    return {**flight(days_ahead=DAYS_AHEAD), "change_policy": {"changeable": True, "manual": True}}


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


async def search(deps: Deps, partner: Requester, product_id: str) -> list[str]:
    """The itinerary ids offered for the day after the booked one."""
    found = await changes.search_alternatives(
        deps, partner, product_id, ChangeSearch(departure_date=date.today() + timedelta(days=DAYS_AHEAD + 1)),
    )
    return [offer.itinerary_id for offer, _alternative in found]


async def test_an_unknown_itinerary_or_another_partners_is_not_found(
    deps: Deps, partner: Requester, other_partner: Requester, book: Book
) -> None:
    product_id = await product_of(book, partner, flight(days_ahead=DAYS_AHEAD))
    [first, *_] = await search(deps, partner, product_id)
    await refused(changes.create_context(deps, partner, "itn_doesnotexist"), Refusal.NOT_FOUND)
    await refused(changes.create_context(deps, other_partner, first), Refusal.NOT_FOUND)
    await refused(changes.search_alternatives(deps, other_partner, product_id, ChangeSearch()), Refusal.NOT_FOUND)


async def test_an_expired_itinerary_is_refused(deps: Deps, partner: Requester, book: Book) -> None:
    product_id = await product_of(book, partner, flight(days_ahead=DAYS_AHEAD))
    [first, *_] = await search(with_settings(deps, quote_ttl=timedelta(0)), partner, product_id)
    await refused(changes.create_context(deps, partner, first), Refusal.ITINERARY_EXPIRED)


async def test_an_itinerary_offered_before_the_product_changed_is_superseded(
    deps: Deps, worker: Worker, partner: Requester, book: Book
) -> None:
    product_id = await product_of(book, partner, flight(days_ahead=DAYS_AHEAD))
    first, second, *_ = await search(deps, partner, product_id)
    context = await changes.create_context(deps, partner, first)
    assert context.context_id is not None
    # A context holds the product: the other itinerary waits.
    await refused(changes.create_context(deps, partner, second), Refusal.FLOW_IN_PROGRESS)

    booked = await changes.book_context(deps, partner, context.context_id, invoice_hint=None)
    assert isinstance(booked, ChangeBooked) and booked.info.status == "modified" and booked.product is not None
    await refused(changes.create_context(deps, partner, second), Refusal.ITINERARY_SUPERSEDED)


async def test_an_expired_context_is_not_booked(deps: Deps, worker: Worker, partner: Requester, book: Book) -> None:
    product_id = await product_of(book, partner, flight(days_ahead=DAYS_AHEAD))
    [first, *_] = await search(deps, partner, product_id)
    context = await changes.create_context(with_settings(deps, change_context_ttl=timedelta(0)), partner, first)
    assert context.context_id is not None
    await refused(changes.book_context(deps, partner, context.context_id, invoice_hint=None), Refusal.CONTEXT_EXPIRED)


async def test_a_product_that_may_not_be_changed_is_refused(deps: Deps, partner: Requester, agent: Requester, book: Book) -> None:
    unchangeable = await product_of(book, partner, hotel())  # change_policy.changeable: false
    assert await changes.allowance(deps, partner, unchangeable) == (["airline_restriction"], False)
    await refused(changes.search_alternatives(deps, partner, unchangeable, ChangeSearch()), Refusal.CHANGE_DISALLOWED)
    await refused(changes.issue_checkout(deps, agent, unchangeable, "new dates", eur("10"), None), Refusal.CHANGE_DISALLOWED)

    busy = await product_of(book, partner, hotel())
    await cancellations.cancel(deps, partner, busy, (await cancellations.quote(deps, partner, busy)).quote_id)
    await refused(changes.issue_checkout(deps, agent, busy, "new dates", eur("10"), None), Refusal.FLOW_IN_PROGRESS)


async def test_a_manual_product_is_changed_by_checkout_not_by_alternatives(deps: Deps, partner: Requester, book: Book) -> None:
    product_id = await product_of(book, partner, manual_flight())
    assert await changes.allowance(deps, partner, product_id) == ([], True)
    await refused(changes.search_alternatives(deps, partner, product_id, ChangeSearch()), Refusal.MANUAL_CHANGE)


async def test_a_checkout_names_its_fields_when_they_do_not_fit_the_product(
    deps: Deps, partner: Requester, agent: Requester, book: Book
) -> None:
    product_id = await product_of(book, partner, manual_flight())
    wrong_currency = await refused(
        changes.issue_checkout(deps, agent, product_id, "new dates", Money(amount=Decimal("10"), currency="USD"), None),
        Refusal.INVALID_FIELDS,
    )
    assert wrong_currency.errors == [{"field": "amount.currency", "message": "must be the product's currency, EUR"}]
    negative = await refused(changes.issue_checkout(deps, agent, product_id, "new dates", eur("-1"), None), Refusal.INVALID_FIELDS)
    assert negative.errors == [{"field": "amount.amount", "message": "must not be negative"}]
    hotel_id = await product_of(book, partner, {**hotel(), "change_policy": {"changeable": True, "manual": True}})
    segments = flight()["segments"]
    not_a_flight = await refused(changes.issue_checkout(deps, agent, hotel_id, "new dates", eur("10"), segments), Refusal.INVALID_FIELDS)
    assert not_a_flight.errors == [{"field": "segments", "message": "only a flight has segments"}]


async def test_an_expired_checkout_is_not_prebooked(deps: Deps, worker: Worker, partner: Requester, agent: Requester, book: Book) -> None:
    reservation = await book(partner, manual_flight())
    product_id = reservation["products"][0]["product_id"]
    issued = await changes.issue_checkout(with_settings(deps, checkout_ttl=timedelta(0)), agent, product_id, "new dates",
                                          eur("10"), None)
    assert issued.checkout_id is not None
    await refused(changes.prebook(deps, partner, issued.checkout_id, reservation["reservation_id"]), Refusal.CHECKOUT_EXPIRED)


async def test_a_checkout_is_prebooked_before_it_is_booked(
    deps: Deps, worker: Worker, partner: Requester, agent: Requester, book: Book
) -> None:
    reservation = await book(partner, manual_flight())
    product_id = reservation["products"][0]["product_id"]
    issued = await changes.issue_checkout(deps, agent, product_id, "new dates", eur("10"), None)
    assert issued.checkout_id is not None
    checkout_context = public_id(CHECKOUT_CONTEXT_PREFIX, issued.code)
    await refused(changes.book_checkout(deps, partner, checkout_context, "card"), Refusal.NOT_PREBOOKED)

    prebooked = await changes.prebook(deps, partner, issued.checkout_id, reservation["reservation_id"])
    assert not isinstance(prebooked, StillWorking) and prebooked.checkout_context_id == checkout_context
    booked = await changes.book_checkout(deps, partner, checkout_context, "card")
    assert isinstance(booked, ChangeBooked) and booked.info.status == "modified"
