"""Every check a refunds-ledger or deposit request runs, called on ``services.refunds`` without HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.money import Money
from domain.refund_ledger import RefundState
from domain.refusals import Refusal
from services import refunds
from services.bootstrap import Deps
from services.requester import Requester
from store.accounts import Principal
from store.refund_records import RefundFilter
from tests.api.conftest import flight, hotel
from tests.services.conftest import Book, refused

ADMIN = Requester(Principal("admin", "admin"))


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def with_deposit(product: dict[str, Any]) -> dict[str, Any]:
    return {**product, "deposit": {"amount": "100.00", "currency": "EUR"}}


async def refund(deps: Deps, reservation_id: str, amount: str, state: RefundState = "draft", code: str | None = None) -> Any:
    return await refunds.create(deps, ADMIN, reservation_id=reservation_id, amount=eur(amount), state=state,
                                reason="goodwill", notes="", back_office_code=code)


async def test_a_refund_never_exceeds_what_was_charged(deps: Deps, partner: Requester, book: Book) -> None:
    reservation_id = (await book(partner, flight()))["reservation_id"]  # charged 240.00 EUR
    await refused(refund(deps, reservation_id, "240.01", "posted"), Refusal.REFUND_EXCEEDS_CHARGED)
    posted = await refund(deps, reservation_id, "200", "posted")
    draft = await refund(deps, reservation_id, "40.01")
    await refused(refunds.post(deps, ADMIN, draft.refund_id), Refusal.REFUND_EXCEEDS_CHARGED)
    assert posted.state == "posted"


async def test_an_amount_that_does_not_fit_the_reservation_names_its_field(deps: Deps, partner: Requester, book: Book) -> None:
    reservation_id = (await book(partner, flight()))["reservation_id"]
    usd = await refused(refunds.create(deps, ADMIN, reservation_id=reservation_id, amount=Money(amount=Decimal("1"), currency="USD"),
                                       state="draft", reason="goodwill", notes="", back_office_code=None), Refusal.INVALID_FIELDS)
    assert [e["field"] for e in usd.errors or []] == ["amount.currency"]
    unknown = await refused(refund(deps, "RES-DOESNOTEXIST", "1"), Refusal.INVALID_FIELDS)
    assert unknown.errors == [{"field": "reservation_id", "message": "no such reservation"}]


async def test_only_a_draft_is_edited_posted_or_rejected(deps: Deps, partner: Requester, book: Book) -> None:
    reservation_id = (await book(partner, flight()))["reservation_id"]
    posted = await refund(deps, reservation_id, "10", "posted")
    await refused(refunds.edit(deps, ADMIN, posted.refund_id, {"reason": "other"}), Refusal.REFUND_NOT_DRAFT)
    await refused(refunds.post(deps, ADMIN, posted.refund_id), Refusal.REFUND_NOT_DRAFT)
    await refused(refunds.reject(deps, ADMIN, posted.refund_id, "no"), Refusal.REFUND_NOT_DRAFT)
    draft = await refund(deps, reservation_id, "10")
    cleared = await refused(refunds.edit(deps, ADMIN, draft.refund_id, {"amount": None, "notes": None}), Refusal.INVALID_FIELDS)
    assert cleared.errors == [{"field": "amount", "message": "must not be null"}, {"field": "notes", "message": "must not be null"}]


async def test_a_back_office_code_names_one_refund(deps: Deps, partner: Requester, book: Book) -> None:
    reservation_id = (await book(partner, flight()))["reservation_id"]
    # Codes are unique across the whole ledger (and the PostgreSQL database lives for the whole session).
    first, second = f"BO-{reservation_id}-1", f"BO-{reservation_id}-2"
    await refund(deps, reservation_id, "10", code=first)
    await refused(refund(deps, reservation_id, "10", code=first), Refusal.DUPLICATE_BACK_OFFICE_CODE)
    other = await refund(deps, reservation_id, "10", code=second)
    await refused(refunds.edit(deps, ADMIN, other.refund_id, {"back_office_code": first}), Refusal.DUPLICATE_BACK_OFFICE_CODE)


async def test_a_deposit_is_given_back_once_and_only_when_there_is_one(deps: Deps, partner: Requester, book: Book) -> None:
    reservation = await book(partner, flight(), with_deposit(hotel()))
    no_deposit, deposit = (p["product_id"] for p in reservation["products"])
    await refused(refunds.refund_deposit(deps, partner, no_deposit), Refusal.NO_DEPOSIT)
    given_back = await refunds.refund_deposit(deps, partner, deposit)
    assert given_back.amount == eur("100.00") and given_back.state == "posted"
    await refused(refunds.refund_deposit(deps, partner, deposit), Refusal.DEPOSIT_ALREADY_REFUNDED)


async def test_a_partner_sees_only_its_own_refunds(deps: Deps, partner: Requester, other_partner: Requester, book: Book) -> None:
    reservation = await book(partner, with_deposit(hotel()))
    mine = await refunds.refund_deposit(deps, partner, reservation["products"][0]["product_id"])
    await refused(refunds.refund_deposit(deps, other_partner, reservation["products"][0]["product_id"]), Refusal.NOT_FOUND)
    await refused(refunds.post(deps, other_partner, mine.refund_id), Refusal.NOT_FOUND)
    theirs = await refunds.refund_deposit(deps, other_partner, (await book(other_partner, with_deposit(hotel())))["products"][0]["product_id"])

    def ids(page: list[tuple[int, Any]]) -> list[str]:
        return [r.refund_id for _, r in page]

    assert ids(await refunds.page(deps, partner, RefundFilter(), None, 10)) == [mine.refund_id]
    assert ids(await refunds.page(deps, other_partner, RefundFilter(), None, 10)) == [theirs.refund_id]
    # Asking for another partner's: nothing at all, not the caller's own either.
    assert await refunds.page(deps, other_partner, RefundFilter(partner_id=partner.principal.principal_id), None, 10) == []
    assert ids(await refunds.page(deps, ADMIN, RefundFilter(partner_id=partner.principal.principal_id), None, 10)) == [mine.refund_id]
