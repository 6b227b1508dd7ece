"""Settlement in the store, on SQLite and PostgreSQL (docs/settlement.md): money written with the state that
causes it and exactly once by its key, refunds numbered without a gap under concurrent posting, and
never more refunded than charged however many posts race."""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from domain.cancellation_flow import CancellationInfo
from domain.codes import EVENT_ID, FlowKind, new_flow_code
from domain.flow_info import FlowRecord
from domain.journal import JournalEntry, gapless, invariant_violations
from domain.money import Money
from domain.products import ReservationSpec
from domain.refund_ledger import REFUND_POSTED, Refund
from domain.refusals import Refusal, Refused
from store.money_effects import book
from store.refund_records import RefundFilter
from store.repositories import Store
from store.schema import events, payments, refunds

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
RNG = secrets.SystemRandom()


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def spec(*prices: str, deposit: str | None = None) -> ReservationSpec:
    return ReservationSpec.model_validate({
        "travellers": [{"traveller_id": "T1", "name": "Ada"}],
        "products": [{
            "kind": "other", "name": "Transfer", "starts_at": "2027-01-01T10:00:00+00:00",
            "ends_at": "2027-01-01T11:00:00+00:00", "price": {"amount": price, "currency": "EUR"}, "vat_rate": "0.10",
            "cancellation_policy": {"mode": "automatic"},
            **({"deposit": {"amount": deposit, "currency": "EUR"}} if deposit else {}),
        } for price in prices],
    })


async def sold(store: Store, *prices: str, deposit: str | None = None) -> tuple[str, str, list[str]]:
    """A partner and a reservation of it; its id, and its products' ids."""
    partner, _ = await store.accounts.create_partner("Acme", None)
    reservation_id = await store.reservations.create(partner.partner_id, spec(*prices, deposit=deposit), random.Random())
    products = [p.product_id for p in await store.reservations.products_of(reservation_id)]
    return partner.partner_id, reservation_id, products


async def drafts(store: Store, reservation_id: str, amount: str, count: int) -> list[Refund]:
    return [await store.refunds.create(reservation_id=reservation_id, amount=eur(amount), state="draft", reason="test",
                                       notes="", back_office_code=None, by="agent:agt_1", at=NOW)
            for _ in range(count)]


async def references_gapless(store: Store) -> bool:
    """Every refund in the database, drafts and rejected ones too, has a reference number, 1, 2, 3… without a gap."""
    return gapless(int(r.reference_number) for _, r in await store.refunds.page(RefundFilter(), None, 100_000))


async def balanced(store: Store, reservation_id: str) -> Decimal:
    entries = await store.payments.entries(reservation_id)
    assert invariant_violations(entries, await store.refunds.posted(reservation_id)) == []
    return sum((e.amount.amount for e in entries), Decimal(0))


async def test_a_sale_books_its_fares_and_deposits_in_its_transaction(store: Store) -> None:
    partner_id, reservation_id, products = await sold(store, "240.00", "99.99", deposit="50")
    entries = await store.payments.entries(reservation_id)
    assert [(e.effect_key, e.category, e.amount) for e in entries] == [
        (f"sale:{products[0]}:fare", "fare", eur("240")), (f"sale:{products[0]}:deposit", "deposit", eur("50")),
        (f"sale:{products[1]}:fare", "fare", eur("99.99")), (f"sale:{products[1]}:deposit", "deposit", eur("50")),
    ]
    assert {e.partner_id for e in entries} == {partner_id}


async def test_concurrent_posting_numbers_without_gap(store: Store) -> None:
    """25 posts at once over five reservations, with refused posts among them: numbers stay 1, 2, 3…"""
    waiting: list[Refund] = []
    for _ in range(5):
        _, reservation_id, _ = await sold(store, "100.00")
        waiting += await drafts(store, reservation_id, "20.00", 5)  # fit exactly
        waiting += await drafts(store, reservation_id, "0.01", 1)  # one too many: refused, its number given back
    before = {r.number for r in await store.refunds.posted()}

    outcomes = await asyncio.gather(*(store.refunds.post(r.refund_id, "agent:agt_1", NOW) for r in waiting),
                                    return_exceptions=True)

    posted = [o for o in outcomes if isinstance(o, Refund)]
    refused = [o for o in outcomes if isinstance(o, Refused)]
    assert len(posted) == 25 and len(refused) == 5, outcomes
    assert {r.refusal for r in refused} == {Refusal.REFUND_EXCEEDS_CHARGED}
    numbers = sorted(int(r.number or 0) for r in posted)
    assert numbers == list(range(numbers[0], numbers[0] + 25)) and not set(numbers) & before
    assert gapless(r.number for r in await store.refunds.posted())
    for reservation_id in {r.reservation_id for r in waiting}:
        # Five 20.00 fit exactly; when the 0.01 wins its race, one 20.00 is the one refused.
        assert await balanced(store, reservation_id) in (Decimal("0.00"), Decimal("19.99"))


async def test_concurrent_posts_that_together_exceed_the_charge_have_one_winner(store: Store) -> None:
    _, reservation_id, _ = await sold(store, "240.00")
    waiting = await drafts(store, reservation_id, "150.00", 10)  # each fits; any two exceed

    outcomes = await asyncio.gather(*(store.refunds.post(r.refund_id, "agent:agt_1", NOW) for r in waiting),
                                    return_exceptions=True)

    assert len([o for o in outcomes if isinstance(o, Refund)]) == 1, outcomes
    assert all(o.refusal == Refusal.REFUND_EXCEEDS_CHARGED for o in outcomes if not isinstance(o, Refund))
    assert await balanced(store, reservation_id) == Decimal("90.00")


async def test_concurrent_create_posted_and_deposit_refunds_have_one_winner(store: Store) -> None:
    _, reservation_id, [product_id] = await sold(store, "100.00", deposit="100.00")
    creates = [store.refunds.create(reservation_id=reservation_id, amount=eur("150"), state="posted", reason="test",
                                    notes="", back_office_code=None, by="admin", at=NOW) for _ in range(5)]
    deposits = [store.refunds.refund_deposit(product_id, "admin", NOW) for _ in range(5)]

    outcomes = await asyncio.gather(*creates, *deposits, return_exceptions=True)

    done = [o for o in outcomes if isinstance(o, Refund)]
    # 200 charged: one 150 refund and the 100 deposit cannot both pass; the deposit is given back once at most.
    assert len(done) == 1, outcomes
    assert len([o for o in outcomes[5:] if isinstance(o, Refund)]) <= 1
    assert all(isinstance(o, Refused) for o in outcomes if not isinstance(o, Refund)), outcomes
    assert await balanced(store, reservation_id) in (Decimal("50.00"), Decimal("100.00"))


async def test_the_effect_key_refuses_a_second_write(store: Store) -> None:
    partner_id, reservation_id, [product_id] = await sold(store, "240.00")
    entry = JournalEntry(effect_key=f"test:{secrets.token_hex(6)}", reservation_id=reservation_id, partner_id=partner_id,
                         category="fee", amount=eur("30"))
    async with store.engine.begin() as conn:
        assert await book(conn, [entry], NOW) == 1
        assert await book(conn, [entry], NOW) == 0  # the same effect again, in the same transaction
    async with store.engine.begin() as conn:
        assert await book(conn, [entry, entry.model_copy(update={"effect_key": entry.effect_key + ":2"})], NOW) == 1
    with pytest.raises(sa.exc.IntegrityError):
        async with store.engine.begin() as conn:
            # The key is the database's: a plain insert of the same effect fails, whoever writes it.
            await conn.execute(payments.insert().values(
                payment_id="pay_dup" + secrets.token_hex(4), effect_key=entry.effect_key, partner_id=partner_id,
                reservation_id=reservation_id, category="fee", amount="30.00", currency="EUR", state="to_invoice",
                created_at=NOW))
    assert await balanced(store, reservation_id) == Decimal("300.00")


def cancelled(code: str, partner_id: str, reservation_id: str, product_id: str) -> FlowRecord:
    """A cancellation's final transition as its workflow records it (the event is one the product sends)."""
    info = CancellationInfo(code=code, product_id=product_id, reservation_id=reservation_id, partner_id=partner_id,
                            status="cancelled", resolution="automatic", paid=eur("240"), penalty=eur("120"), refund=eur("120"))
    return FlowRecord.of(info, FlowKind.CANCELLATION, NOW, EVENT_ID.secure(), "cancellation.completed")


async def test_a_flows_refund_is_posted_once_however_often_the_transition_is_recorded(store: Store) -> None:
    partner_id, reservation_id, [product_id] = await sold(store, "240.00")
    code = new_flow_code(FlowKind.CANCELLATION, RNG)
    final = cancelled(code, partner_id, reservation_id, product_id)
    await store.flows.record_flow(final)
    await store.flows.record_flow(final)  # a retried activity
    await asyncio.gather(*(store.flows.record_flow(final) for _ in range(10)))  # and racing retries

    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(refunds).where(refunds.c.flow_code == code))).all()
        entries = (await conn.execute(sa.select(payments).where(payments.c.flow_code == code))).all()
        posted_events = (await conn.execute(
            sa.select(events.c.payload).where(events.c.flow_code == code, events.c.type == REFUND_POSTED))).all()
    assert [(r.state, r.amount, r.effect_key) for r in rows] == [("posted", "120.00", f"flow:{code}")]
    assert [(e.category, e.amount, e.refund_id, e.vat_rate) for e in entries] == [("refund", "-120.00", rows[0].refund_id, "0.10")]
    assert [e.payload["data"]["refund_id"] for e in posted_events] == [rows[0].refund_id]
    assert await balanced(store, reservation_id) == Decimal("120.00")
    await drafts(store, reservation_id, "1.00", 1)  # the next refund takes the next number: the retries used none
    assert await references_gapless(store) and gapless(r.number for r in await store.refunds.posted())


async def test_only_a_draft_is_decided(store: Store) -> None:
    _, reservation_id, _ = await sold(store, "240.00")
    [first, second] = await drafts(store, reservation_id, "10.00", 2)
    posted = await store.refunds.post(first.refund_id, "admin", NOW)
    assert posted is not None and posted.state == "posted"
    rejected = await store.refunds.reject(second.refund_id, "no", "admin", NOW)
    assert rejected is not None and rejected.state == "rejected"
    for attempt in (store.refunds.post(first.refund_id, "admin", NOW), store.refunds.reject(first.refund_id, "x", "admin", NOW),
                    store.refunds.post(second.refund_id, "admin", NOW), store.refunds.edit(second.refund_id, {"notes": "x"}, NOW)):
        with pytest.raises(Refused) as refused:
            await attempt
        assert refused.value.refusal == Refusal.REFUND_NOT_DRAFT
    assert await store.refunds.post("rfd_none", "admin", NOW) is None
    # Racing posts of one draft: one posts it, the others find it posted.
    [third] = await drafts(store, reservation_id, "10.00", 1)
    outcomes = await asyncio.gather(*(store.refunds.post(third.refund_id, "admin", NOW) for _ in range(5)),
                                    return_exceptions=True)
    assert len([o for o in outcomes if isinstance(o, Refund)]) == 1
    assert await balanced(store, reservation_id) == Decimal("220.00")


async def test_a_flows_refund_and_an_agents_post_racing_never_refund_more_than_charged(store: Store) -> None:
    """The flow's refund and the agent's post lock the same reservation: whichever is second sees the first."""
    races = []
    for _ in range(5):
        partner_id, reservation_id, [product_id] = await sold(store, "240.00")
        [draft] = await drafts(store, reservation_id, "200.00", 1)
        code = new_flow_code(FlowKind.CANCELLATION, RNG)
        races.append((reservation_id, code, store.refunds.post(draft.refund_id, "agent:agt_1", NOW),
                      store.flows.record_flow(cancelled(code, partner_id, reservation_id, product_id))))

    outcomes = await asyncio.gather(*(asyncio.gather(post, record, return_exceptions=True) for _, _, post, record in races))

    for (reservation_id, code, _, _), (posted, _) in zip(races, outcomes, strict=True):
        [flow_refund] = [r for _, r in await store.refunds.page(RefundFilter(flow_code=code), None, 10)]
        if isinstance(posted, Refund):  # the agent first: the flow's 120 is capped at the 40 left
            assert (flow_refund.state, flow_refund.amount) == ("posted", eur("40"))
        else:  # the flow first: the agent's 200 no longer fits
            assert isinstance(posted, Refused) and posted.refusal == Refusal.REFUND_EXCEEDS_CHARGED
            assert (flow_refund.state, flow_refund.amount) == ("posted", eur("120"))
        assert await balanced(store, reservation_id) in (Decimal("0.00"), Decimal("120.00"))


async def test_a_post_and_a_reject_racing_decide_a_draft_once(store: Store) -> None:
    _, reservation_id, _ = await sold(store, "240.00")
    waiting = await drafts(store, reservation_id, "10.00", 8)

    outcomes = await asyncio.gather(*(
        call for refund in waiting for call in (
            store.refunds.post(refund.refund_id, "admin", NOW), store.refunds.reject(refund.refund_id, "no", "admin", NOW))
    ), return_exceptions=True)

    for won, lost in zip(outcomes[::2], outcomes[1::2], strict=True):
        decided = [o for o in (won, lost) if isinstance(o, Refund)]
        refused = [o for o in (won, lost) if isinstance(o, Refused)]
        assert len(decided) == 1 and [r.refusal for r in refused] == [Refusal.REFUND_NOT_DRAFT], (won, lost)
    posted = [o for o in outcomes[::2] if isinstance(o, Refund)]
    assert await balanced(store, reservation_id) == Decimal("240.00") - 10 * len(posted)
    assert gapless(r.number for r in await store.refunds.posted())


async def test_a_back_office_code_is_held_by_one_refund_and_a_refused_write_uses_no_number(store: Store) -> None:
    _, reservation_id, _ = await sold(store, "240.00")
    code, other_code = "BO-" + secrets.token_hex(4), "BO-" + secrets.token_hex(4)

    def create(back_office_code: str | None) -> Any:
        return store.refunds.create(reservation_id=reservation_id, amount=eur("1.00"), state="draft", reason="test",
                                    notes="", back_office_code=back_office_code, by="admin", at=NOW)

    created = await asyncio.gather(*(create(code) for _ in range(5)), return_exceptions=True)
    assert len([o for o in created if isinstance(o, Refund)]) == 1, created
    assert {o.refusal for o in created if isinstance(o, Refused)} == {Refusal.DUPLICATE_BACK_OFFICE_CODE}
    [first, second] = [await create(None), await create(None)]
    # Two edits racing for one code: on PostgreSQL the second waits on the unique index, then is refused.
    edits = await asyncio.gather(store.refunds.edit(first.refund_id, {"back_office_code": other_code}, NOW),
                                 store.refunds.edit(second.refund_id, {"back_office_code": other_code}, NOW),
                                 return_exceptions=True)
    assert len([o for o in edits if isinstance(o, Refund)]) == 1, edits
    assert [o.refusal for o in edits if isinstance(o, Refused)] == [Refusal.DUPLICATE_BACK_OFFICE_CODE]
    with pytest.raises(Refused) as duplicate:
        await store.refunds.edit(first.refund_id, {"back_office_code": code}, NOW)
    assert duplicate.value.refusal == Refusal.DUPLICATE_BACK_OFFICE_CODE
    with pytest.raises(sa.exc.IntegrityError):  # another constraint refusing an edit is a fault, not a duplicate code
        await store.refunds.edit(first.refund_id, {"reason": None}, NOW)
    assert await references_gapless(store)


async def test_a_deposit_is_given_back_once_and_a_second_try_uses_no_number(store: Store) -> None:
    _, reservation_id, [product_id] = await sold(store, "100.00", deposit="30.00")
    given = await store.refunds.refund_deposit(product_id, "admin", NOW)
    assert given is not None and (given.category, given.amount, given.state) == ("deposit", eur("30"), "posted")
    for _ in range(2):
        with pytest.raises(Refused) as again:
            await store.refunds.refund_deposit(product_id, "admin", NOW)
        assert again.value.refusal == Refusal.DEPOSIT_ALREADY_REFUNDED
    await drafts(store, reservation_id, "1.00", 1)
    assert await references_gapless(store)
    assert await balanced(store, reservation_id) == Decimal("100.00")
