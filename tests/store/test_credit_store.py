"""Credits in the store, on SQLite and PostgreSQL (docs/settlement.md#credits): issued once by the
transition that refunds, however often it is recorded; never more taken than remains, however many
changes pay with one at once; expired once, and not at all once used; the books' constraints held by
the database itself."""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from domain import credit_ledger
from domain.cancellation_flow import CancellationInfo
from domain.codes import EVENT_ID, FlowKind, new_flow_code
from domain.credit_ledger import CREDIT_EXPIRED, CREDIT_ISSUED, CREDIT_REDEEMED, CREDIT_VALIDITY, Credit, credit_terms
from domain.flow_info import FlowRecord
from domain.journal import invariant_violations
from domain.money import Money
from domain.refusals import Refusal, Refused
from store.credit_records import CreditFilter
from store.repositories import Store
from store.schema import credit_movements, credits, events, payments, refunds
from tests.store.test_settlement_store import eur, sold, spec

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
RNG = secrets.SystemRandom()
CONCURRENT = 20


def cancelled_to_credit(partner_id: str, reservation_id: str, product_id: str, refund: str = "240.00",
                        at: datetime = NOW, currency: str = "EUR") -> FlowRecord:
    """A cancellation's ``cancelled`` transition (of a 240.00 product) whose partner took the refund as a credit."""
    code = new_flow_code(FlowKind.CANCELLATION, RNG)
    paid, refunded = Money.of("240", currency), Money.of(refund, currency)
    terms = credit_terms(code, refunded, "credit", CREDIT_VALIDITY, at)
    # Recorded as its workflow records it: a whole CancellationInfo, so its event is one the product sends.
    info = CancellationInfo(code=code, product_id=product_id, reservation_id=reservation_id, partner_id=partner_id,
                            status="cancelled", resolution="automatic", paid=paid, penalty=paid - refunded, refund=refunded,
                            **terms)
    return FlowRecord.of(info, FlowKind.CANCELLATION, at, EVENT_ID.secure(), "cancellation.completed")


def modified_with_credit(partner_id: str, reservation_id: str, product_id: str, credit_id: str, due: str,
                         at: datetime = NOW) -> FlowRecord:
    """An agent's checkout of ``due``, booked with the credit, recorded ``modified``."""
    code = new_flow_code(FlowKind.CHANGE, RNG)
    return FlowRecord(
        code=code, kind=FlowKind.CHANGE, product_id=product_id, reservation_id=reservation_id, partner_id=partner_id,
        status="modified", terminal=True, at=at,
        info={"code": code, "status": "modified", "resolution": "manual", "total_due": eur(due).model_dump(mode="json"),
              "payment_method": "credit", "credit_id": credit_id},
    )


async def sold_to(store: Store, partner_id: str, price: str) -> tuple[str, str]:
    """Another reservation of the partner: its id and its product's."""
    reservation_id = await store.reservations.create(partner_id, spec(price), random.Random())
    [product] = await store.reservations.products_of(reservation_id)
    return reservation_id, product.product_id


async def issued(store: Store, amount: str = "240.00") -> tuple[str, Credit]:
    """A partner and a credit of ``amount`` it was given instead of a refund."""
    partner_id, reservation_id, [product_id] = await sold(store, "240.00")
    record = cancelled_to_credit(partner_id, reservation_id, product_id, amount)
    await store.flows.record_flow(record)
    [credit] = await store.credits.of_partner(partner_id)
    return partner_id, credit


async def balanced(store: Store, partner_id: str) -> list[Credit]:
    """The partner's credits, after checking both invariants on what the database holds."""
    found = await store.credits.of_partner(partner_id)
    async with store.engine.connect() as conn:
        reservations = (await conn.execute(sa.select(payments.c.reservation_id).where(payments.c.partner_id == partner_id)
                                           .distinct())).scalars().all()
    entries = [e for reservation_id in reservations for e in await store.payments.entries(reservation_id)]
    assert credit_ledger.violations(found, entries) == []
    for reservation_id in reservations:
        assert invariant_violations(await store.payments.entries(reservation_id), await store.refunds.posted(reservation_id)) == []
    return found


async def events_of(store: Store, credit_id: str) -> list[str]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(events.c.type, events.c.payload).order_by(events.c.seq))).all()
    return [row.type for row in rows if row.type.startswith("credit.") and row.payload["data"].get("credit_id") == credit_id]


async def test_a_credit_is_issued_once_however_often_the_transition_is_recorded(store: Store) -> None:
    partner_id, reservation_id, [product_id] = await sold(store, "240.00")
    record = cancelled_to_credit(partner_id, reservation_id, product_id, "200.00")
    await store.flows.record_flow(record)
    await store.flows.record_flow(record)  # a retried activity
    await asyncio.gather(*(store.flows.record_flow(record) for _ in range(10)))  # and racing retries

    [credit] = await balanced(store, partner_id)
    assert (credit.credit_id, credit.flow_code, credit.amount, credit.remaining, credit.state) == (
        credit_ledger.credit_id_for(record.code), record.code, eur("200"), eur("200"), "active")
    assert credit.expires_at == NOW + CREDIT_VALIDITY and credit.traveller_ids == ["T1"]
    assert [(m.kind, m.amount, m.flow_code) for m in credit.movements] == [("issued", eur("200"), record.code)]
    assert await events_of(store, credit.credit_id) == [CREDIT_ISSUED]
    async with store.engine.connect() as conn:
        assert (await conn.execute(sa.select(refunds).where(refunds.c.flow_code == record.code))).all() == []
    # No refund: the partner paid the whole fare, and holds a credit instead of the 200.
    assert [(e.category, e.amount) for e in await store.payments.entries(reservation_id)] == [("fare", eur("240"))]


async def test_concurrent_redemptions_never_take_more_than_remains(store: Store) -> None:
    """Twenty changes paid with one credit of 240.00 recorded at once, each due 200.00: one takes 200,
    one the 40 left, the others nothing (they are due in cash), and the sum taken is the credit."""
    partner_id, credit = await issued(store, "240.00")
    changes = []
    for _ in range(CONCURRENT):
        reservation_id, product_id = await sold_to(store, partner_id, "300.00")
        changes.append(modified_with_credit(partner_id, reservation_id, product_id, credit.credit_id, "200.00"))

    await asyncio.gather(*(store.flows.record_flow(change) for change in changes))
    await asyncio.gather(*(store.flows.record_flow(change) for change in changes))  # every one retried

    [after] = await balanced(store, partner_id)
    taken = [m.amount for m in after.movements if m.kind == "redeemed"]
    assert sorted(taken, key=lambda m: m.amount) == [eur("40"), eur("200")]
    assert (after.remaining, after.redeemed, after.state) == (eur("0"), eur("240"), "used")
    async with store.engine.connect() as conn:
        booked = (await conn.execute(sa.select(payments.c.amount).where(payments.c.credit_id == credit.credit_id))).scalars().all()
    assert sorted(Decimal(a) for a in booked) == [Decimal("-200.00"), Decimal("-40.00")]
    assert await events_of(store, credit.credit_id) == [CREDIT_ISSUED, CREDIT_REDEEMED, CREDIT_REDEEMED]


async def test_what_remains_expires_once_and_a_used_credit_does_not_expire(store: Store) -> None:
    partner_id, credit = await issued(store, "240.00")
    reservation_id, product_id = await sold_to(store, partner_id, "100.00")
    await store.flows.record_flow(modified_with_credit(partner_id, reservation_id, product_id, credit.credit_id, "40.00"))

    states = await asyncio.gather(*(store.credits.expire(credit.credit_id, credit.expires_at) for _ in range(5)))

    assert states == ["expired"] * 5
    [after] = await balanced(store, partner_id)
    assert (after.state, after.remaining, after.redeemed, after.expired) == ("expired", eur("0"), eur("40"), eur("200"))
    assert [(m.kind, m.amount, m.at) for m in after.movements][1:] == [
        ("redeemed", eur("40"), NOW), ("expired", eur("200"), credit.expires_at)]
    assert await events_of(store, credit.credit_id) == [CREDIT_ISSUED, CREDIT_REDEEMED, CREDIT_EXPIRED]
    assert await store.credits.expire("crd_doesnotexist", NOW) is None

    other_partner, used = await issued(store, "30.00")
    reservation_id, product_id = await sold_to(store, other_partner, "100.00")
    await store.flows.record_flow(modified_with_credit(other_partner, reservation_id, product_id, used.credit_id, "50.00"))
    assert await store.credits.expire(used.credit_id, used.expires_at) == "used"
    [still_used] = await balanced(store, other_partner)
    assert (still_used.state, [m.kind for m in still_used.movements]) == ("used", ["issued", "redeemed"])


async def test_a_change_recorded_after_the_expiry_pays_in_cash(store: Store) -> None:
    """A redemption and the expiry race for the credit's row: whichever is second sees the first, and a
    change recorded once the credit expired takes nothing from it (it is due in cash)."""
    races = []
    for _ in range(5):
        partner_id, credit = await issued(store, "100.00")
        reservation_id, product_id = await sold_to(store, partner_id, "100.00")
        change = modified_with_credit(partner_id, reservation_id, product_id, credit.credit_id, "30.00")
        races.append((partner_id, store.credits.expire(credit.credit_id, credit.expires_at), store.flows.record_flow(change)))

    await asyncio.gather(*(asyncio.gather(expire, record) for _, expire, record in races))

    for partner_id, _, _ in races:
        [after] = await balanced(store, partner_id)
        assert after.state == "expired"
        assert (after.redeemed, after.expired) in ((eur("0"), eur("100")), (eur("30"), eur("70")))

    partner_id, credit = await issued(store, "100.00")
    await store.credits.expire(credit.credit_id, credit.expires_at)
    reservation_id, product_id = await sold_to(store, partner_id, "100.00")
    await store.flows.record_flow(modified_with_credit(partner_id, reservation_id, product_id, credit.credit_id, "30.00"))
    assert sum((e.amount for e in await store.payments.entries(reservation_id)), Money.zero("EUR")) == eur("130")


async def test_a_change_of_another_partner_takes_nothing_from_a_credit(store: Store) -> None:
    _, credit = await issued(store, "100.00")
    stranger, reservation_id, [product_id] = await sold(store, "100.00")
    await store.flows.record_flow(modified_with_credit(stranger, reservation_id, product_id, credit.credit_id, "30.00"))
    after = await store.credits.credit(credit.credit_id)
    assert after is not None and after.remaining == eur("100")


async def test_refunds_of_a_reservation_never_exceed_its_charge_less_its_credits(store: Store) -> None:
    partner_id, reservation_id, [product_id, other] = await sold(store, "240.00", "60.00")
    await store.flows.record_flow(cancelled_to_credit(partner_id, reservation_id, product_id, "240.00"))
    with pytest.raises(Refused) as refused:
        await store.refunds.create(reservation_id=reservation_id, amount=eur("60.01"), state="posted", reason="goodwill",
                                   notes="", back_office_code=None, by="admin", at=NOW)
    assert refused.value.refusal == Refusal.REFUND_EXCEEDS_CHARGED
    posted = await store.refunds.create(reservation_id=reservation_id, amount=eur("60.00"), state="posted", reason="goodwill",
                                        notes="", back_office_code=None, by="admin", at=NOW)
    assert posted.state == "posted"
    # Nothing is left of the charge: the second cancellation's credit is not issued.
    await store.flows.record_flow(cancelled_to_credit(partner_id, reservation_id, other, "60.00"))
    assert [c.amount for c in await balanced(store, partner_id)] == [eur("240")]


async def test_the_database_refuses_an_unbalanced_or_negative_credit(store: Store) -> None:
    _, credit = await issued(store, "100.00")
    for values in ({"remaining_minor": -1, "redeemed_minor": 10001}, {"remaining_minor": 9000},
                   {"remaining_minor": 0, "expired_minor": 0, "redeemed_minor": 0}):
        with pytest.raises(sa.exc.IntegrityError):
            async with store.engine.begin() as conn:
                await conn.execute(credits.update().where(credits.c.credit_id == credit.credit_id).values(**values))
    with pytest.raises(sa.exc.IntegrityError):  # a movement is once by its key
        async with store.engine.begin() as conn:
            await conn.execute(credit_movements.insert().values(
                effect_key=f"{credit.credit_id}:issued", credit_id=credit.credit_id, kind="issued", amount_minor=1, at=NOW))
    after = await store.credits.credit(credit.credit_id)
    assert after == credit


async def test_credits_are_read_by_filter_and_summed_per_partner_and_currency(store: Store) -> None:
    partner_id, first = await issued(store, "240.00")
    reservation_id, product_id = await sold_to(store, partner_id, "240.00")
    await store.flows.record_flow(cancelled_to_credit(partner_id, reservation_id, product_id, "100.00",
                                                      at=NOW + timedelta(days=1)))
    await store.credits.expire(first.credit_id, first.expires_at)

    everything = [c for _, c in await store.credits.page(CreditFilter(partner_id=partner_id), None, 10)]
    assert [c.amount for c in everything] == [eur("240"), eur("100")]
    assert [c.credit_id for _, c in await store.credits.page(CreditFilter(partner_id=partner_id, state="active"), None, 10)] == [
        everything[1].credit_id]
    soon = NOW + CREDIT_VALIDITY + timedelta(hours=1)
    assert [c.credit_id for _, c in await store.credits.page(CreditFilter(partner_id=partner_id, expires_before=soon), None, 10)] == [
        first.credit_id]
    assert await store.credits.page(CreditFilter(partner_id=partner_id, currency="CHF"), None, 10) == []
    [balance] = await store.credits.balances(partner_id, None, None, 10)
    assert (balance.credits, balance.issued, balance.redeemed, balance.expired, balance.outstanding) == (
        2, eur("340"), eur("0"), eur("240"), eur("100"))


async def test_a_change_that_fails_or_expires_leaves_its_credit_whole(store: Store) -> None:
    """The credit is taken only with a ``modified`` transition: one that fails at the supplier, or
    expires unbooked, naming the credit, takes nothing (there is no hold to release)."""
    partner_id, credit = await issued(store, "100.00")
    reservation_id, product_id = await sold_to(store, partner_id, "100.00")
    for status in ("failed", "expired"):
        ended = modified_with_credit(partner_id, reservation_id, product_id, credit.credit_id, "30.00")
        await store.flows.record_flow(ended.model_copy(update={"status": status, "info": {**ended.info, "status": status}}))
    [after] = await balanced(store, partner_id)
    assert (after.remaining, after.state, [m.kind for m in after.movements]) == (eur("100"), "active", ["issued"])
    assert [e.category for e in await store.payments.entries(reservation_id)] == ["fare"]
