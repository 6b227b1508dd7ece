"""Every check a rescheduling request runs — a schedule change coming in, the partner's choice — called
on ``services.reschedulings`` without HTTP."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from domain.refusals import Refusal
from domain.rescheduling_flow import ScheduleChange
from services import accounts, reschedulings
from services.bootstrap import Deps
from services.flow_start import StillWorking
from services.requester import Requester
from tests.api.conftest import flight, hotel
from tests.services.conftest import Book, final_info, product_of, refused, until_history_has


def cancelled_flight(product_id: str, change_id: str = "airline-change-1") -> ScheduleChange:
    return ScheduleChange(change_id=change_id, product_id=product_id, kind="flight_cancelled")


async def test_a_supplier_changes_only_its_own_carriers_flights(deps: Deps, partner: Requester, book: Book) -> None:
    created = await accounts.register_supplier(deps, "Other Airline", ["AB"])
    zz_flight = await product_of(book, partner, flight(carrier="ZZ"))
    await refused(reschedulings.receive_schedule_change(deps, cancelled_flight(zz_flight), created.account), Refusal.NOT_FOUND)
    a_hotel = await product_of(book, partner, hotel())
    await refused(reschedulings.receive_schedule_change(deps, cancelled_flight(a_hotel)), Refusal.NOT_FOUND)
    await refused(reschedulings.receive_schedule_change(deps, cancelled_flight("PRD-DOESNOTEXIST")), Refusal.NOT_FOUND)
    # Its own carrier's flight is its to change.
    ab_flight = await product_of(book, partner, flight(carrier="AB"))
    assert (await reschedulings.receive_schedule_change(deps, cancelled_flight(ab_flight), created.account)).startswith("RS-")


async def test_the_same_change_pushed_twice_starts_one_flow(deps: Deps, partner: Requester, book: Book) -> None:
    reservation = await book(partner, flight())
    change = cancelled_flight(reservation["products"][0]["product_id"])
    first = await reschedulings.receive_schedule_change(deps, change)
    assert await reschedulings.receive_schedule_change(deps, change) == first
    # Another change of the same product is another flow.
    other = await reschedulings.receive_schedule_change(deps, cancelled_flight(change.product_id, "airline-change-2"))
    assert other != first
    view = await deps.store.reservations.view(reservation["reservation_id"])
    assert view is not None and sorted(f["code"] for f in view["flows"]) == sorted([first, other])


async def test_an_unknown_alternative_is_refused_by_the_flow(
    deps: Deps, worker: Worker, partner: Requester, other_partner: Requester, book: Book
) -> None:
    code = await reschedulings.receive_schedule_change(deps, cancelled_flight(await product_of(book, partner, flight())))
    # The decision window's timer starts once the flow offers its alternatives.
    await until_history_has(deps, code, EventType.EVENT_TYPE_TIMER_STARTED)

    await refused(reschedulings.accept(deps, other_partner, code, "refund"), Refusal.NOT_FOUND)
    unknown = await refused(reschedulings.accept(deps, partner, code, "nope"), Refusal.UNKNOWN_ALTERNATIVE)
    assert unknown.errors == [{"field": "alternative_id", "message": "not one of this rescheduling's alternatives"}]

    accepted = await reschedulings.accept(deps, partner, code, "refund")
    assert not isinstance(accepted, StillWorking) and accepted.status == "accepted"
    assert (await final_info(deps, code))["alternative_id"] == "refund"
    # The same choice again answers the same; another is refused.
    assert await reschedulings.accept(deps, partner, code, "refund") == accepted
    await refused(reschedulings.accept(deps, partner, code, "rebook-1d"), Refusal.NOT_AWAITING_CHOICE)
