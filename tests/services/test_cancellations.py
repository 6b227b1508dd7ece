"""Every check a cancellation request runs, called on ``services.cancellations`` without HTTP."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from temporalio.worker import Worker

from domain.money import Money
from domain.refusals import Refusal
from services import cancellations
from services.bootstrap import Deps
from services.flow_start import StillWorking
from services.requester import Requester
from store.schema import products
from tests.api.conftest import flight, hotel
from tests.services.conftest import Book, final_info, product_of, refused, with_settings


async def test_an_unknown_quote_or_another_partners_is_not_found(
    deps: Deps, partner: Requester, other_partner: Requester, book: Book
) -> None:
    product_id = await product_of(book, partner, flight())
    quote = await cancellations.quote(deps, partner, product_id)

    await refused(cancellations.cancel(deps, partner, product_id, "qt_doesnotexist"), Refusal.NOT_FOUND)
    await refused(cancellations.cancel(deps, other_partner, product_id, quote.quote_id), Refusal.NOT_FOUND)
    # The quote is the partner's, but of another product.
    other_product = await product_of(book, partner, flight())
    await refused(cancellations.cancel(deps, partner, other_product, quote.quote_id), Refusal.NOT_FOUND)


async def test_another_partners_product_is_not_found(deps: Deps, partner: Requester, other_partner: Requester, book: Book) -> None:
    product_id = await product_of(book, partner, flight())
    await refused(cancellations.allowance(deps, other_partner, product_id), Refusal.NOT_FOUND)
    await refused(cancellations.quote(deps, other_partner, product_id), Refusal.NOT_FOUND)


async def test_only_the_newest_quote_cancels(deps: Deps, partner: Requester, book: Book) -> None:
    product_id = await product_of(book, partner, flight())
    first = await cancellations.quote(deps, partner, product_id)
    await cancellations.quote(deps, partner, product_id)
    await refused(cancellations.cancel(deps, partner, product_id, first.quote_id), Refusal.QUOTE_SUPERSEDED)


async def test_an_expired_quote_is_refused(deps: Deps, partner: Requester, book: Book) -> None:
    product_id = await product_of(book, partner, flight())
    short_lived = with_settings(deps, quote_ttl=timedelta(0))
    quote = await cancellations.quote(short_lived, partner, product_id)
    await refused(cancellations.cancel(deps, partner, product_id, quote.quote_id), Refusal.QUOTE_EXPIRED)


async def test_a_product_that_may_not_be_cancelled_gets_no_quote_and_no_cancellation(
    deps: Deps, partner: Requester, book: Book
) -> None:
    pending = (await book(partner, flight(), status="pending"))["products"][0]["product_id"]
    assert await cancellations.allowance(deps, partner, pending) == ("disallowed", ["reservation_pending"])
    await refused(cancellations.quote(deps, partner, pending), Refusal.CANCELLATION_DISALLOWED)

    # Quoted while it could be cancelled, then cancelled by other means before the partner used the quote.
    product_id = await product_of(book, partner, flight())
    quote = await cancellations.quote(deps, partner, product_id)
    async with deps.store.engine.begin() as conn:
        await conn.execute(products.update().where(products.c.product_id == product_id).values(status="cancelled"))
    refusal = await refused(cancellations.cancel(deps, partner, product_id, quote.quote_id), Refusal.CANCELLATION_DISALLOWED)
    assert "already_cancelled" in refusal.detail


async def test_a_product_with_a_flow_in_progress_is_refused(deps: Deps, partner: Requester, book: Book) -> None:
    product_id = await product_of(book, partner, hotel())  # manual: its flow waits for an agent, no worker needed
    quote = await cancellations.quote(deps, partner, product_id)
    started = await cancellations.cancel(deps, partner, product_id, quote.quote_id)
    assert started.status == "awaiting_agent_quote"

    assert await cancellations.allowance(deps, partner, product_id) == ("disallowed", ["flow_in_progress"])
    await refused(cancellations.cancel(deps, partner, product_id, quote.quote_id), Refusal.FLOW_IN_PROGRESS)
    # A quote is refused for the allowance's reasons, the active flow among them.
    busy = await refused(cancellations.quote(deps, partner, product_id), Refusal.CANCELLATION_DISALLOWED)
    assert "flow_in_progress" in busy.detail


async def test_the_flow_decides_on_quotes_and_decisions_and_a_quote_starts_one_flow(
    deps: Deps, worker: Worker, partner: Requester, agent: Requester, book: Book
) -> None:
    product_id = await product_of(book, partner, hotel())
    quote = await cancellations.quote(deps, partner, product_id)
    started = await cancellations.cancel(deps, partner, product_id, quote.quote_id)

    def eur(amount: str) -> Money:
        return Money(amount=Decimal(amount), currency="EUR")

    # The running flow's validators refuse: a quote that does not add up, a decision before any quote.
    refusal = await refused(
        cancellations.submit_quote(deps, agent, started.code, penalty=eur("60"), refund=eur("60"), note=""),
        Refusal.INVALID_QUOTE,
    )
    assert refusal.errors  # the validator's field errors come along
    await refused(cancellations.decide(deps, partner, started.code, "accept"), Refusal.NOT_AWAITING_DECISION)

    quoted = await cancellations.submit_quote(deps, agent, started.code, penalty=eur("60"), refund=eur("540"), note="")
    assert not isinstance(quoted, StillWorking) and quoted.status == "awaiting_partner_decision"
    rejected = await cancellations.decide(deps, partner, started.code, "reject")
    assert not isinstance(rejected, StillWorking) and rejected.status == "rejected"
    assert (await final_info(deps, started.code))["status"] == "rejected"

    # The product is free again, and its quote is used.
    assert await cancellations.allowance(deps, partner, product_id) == ("unknown", [])
    await refused(cancellations.cancel(deps, partner, product_id, quote.quote_id), Refusal.QUOTE_USED)


async def test_an_automatic_cancellation_answers_with_its_outcome_and_a_retry_finds_it(
    deps: Deps, worker: Worker, partner: Requester, book: Book
) -> None:
    product_id = await product_of(book, partner, flight(days_ahead=30))
    quote = await cancellations.quote(deps, partner, product_id)
    # Seeded as the gateway seeds a request under an Idempotency-Key: the caller is part of it.
    seed = f"{partner.principal.principal_id}\none cancellation, retried".encode()

    done = await cancellations.cancel(deps, Requester(partner.principal, seed), product_id, quote.quote_id)
    assert done.status == "cancelled" and done.penalty == Money(amount=Decimal("0.00"), currency="EUR")
    assert done.refund == Money(amount=Decimal("240.00"), currency="EUR")

    # The same request again (same seed: its first answer was lost): the flow it started, not a refusal for its own work.
    again = await cancellations.cancel(deps, Requester(partner.principal, seed), product_id, quote.quote_id)
    assert again == done
    async with deps.store.engine.connect() as conn:
        assert (await conn.execute(sa.select(products.c.cancelled_by).where(products.c.product_id == product_id))
                ).scalar_one() == done.code
    positions = await cancellations.positions(deps, partner, done.code)
    assert positions.code == done.code


async def test_positions_exist_once_cancelled(deps: Deps, partner: Requester, book: Book) -> None:
    product_id = await product_of(book, partner, hotel())
    started = await cancellations.cancel(deps, partner, product_id, (await cancellations.quote(deps, partner, product_id)).quote_id)
    await refused(cancellations.positions(deps, partner, started.code), Refusal.NOT_CANCELLED)
