"""Cancelling some travellers of a product (docs/api.md#partial-cancellation): whose share a
cancellation covers, and what it is.

A cancellation names the travellers it cancels (none named: every traveller still confirmed). Its
``paid`` is the sum of their fares, and everything after follows that share: the penalty rule of
``domain.penalty``, the agent's quote, the journal's refund, the posted refund, the positions and the
refund procedure. The product is cancelled only when no traveller remains.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fractions import Fraction

from domain.change_pricing import ChangeAlternative, ChangeCharges
from domain.money import Money, round_half_up
from domain.products import ProductSpec
from domain.refusals import Refusal, Refused, invalid_fields
from domain.travellers import Fare, rescaled, total

# The allowance reason a subset of travellers gets when the policy cancels only whole products.
PARTIAL_NOT_ALLOWED = "partial_not_allowed"
ALREADY_CANCELLED = "already_cancelled"


@dataclass(frozen=True)
class Share:
    """The travellers a cancellation covers, their fares' sum, and who remains confirmed after it."""

    traveller_ids: tuple[str, ...]
    paid: Money
    remaining: tuple[str, ...]

    @property
    def last(self) -> bool:
        """Nobody remains: the product is cancelled with them."""
        return not self.remaining


def confirmed(fares: Sequence[Fare], cancelled: Collection[str]) -> list[Fare]:
    """The fares of the travellers still confirmed, in the product's order."""
    return [fare for fare in fares if fare.traveller_id not in cancelled]


def share_of(fares: Sequence[Fare], traveller_ids: Collection[str]) -> Money:
    """What ``traveller_ids`` paid of the product."""
    chosen = [fare.amount for fare in fares if fare.traveller_id in traveller_ids]
    if not chosen:
        raise ValueError("a share covers at least one traveller")
    return total(chosen)


def cancellation_share(
    product: ProductSpec, fares: Sequence[Fare], cancelled: Collection[str], requested: Sequence[str]
) -> Share:
    """The share cancelling ``requested`` (empty: every traveller still confirmed) covers.

    A traveller named twice or not on the product: 422 naming it; one already cancelled: 409
    ``cancellation_disallowed`` (``already_cancelled``); fewer than every remaining traveller when the
    policy cancels whole products only: 409 ``cancellation_disallowed`` (``partial_not_allowed``).
    """
    on_product = [fare.traveller_id for fare in fares]
    problems = []
    for index, traveller_id in enumerate(requested):
        if traveller_id not in on_product:
            problems.append((f"traveller_ids[{index}]", f"{traveller_id!r} is not a traveller of the product"))
        elif traveller_id in requested[:index]:
            problems.append((f"traveller_ids[{index}]", f"{traveller_id!r} is named twice"))
    if problems:
        raise invalid_fields(problems)
    gone = [traveller_id for traveller_id in requested if traveller_id in cancelled]
    if gone:
        raise Refused(Refusal.CANCELLATION_DISALLOWED,
                      f"the travellers cannot be cancelled: {ALREADY_CANCELLED} ({', '.join(gone)})")
    still = [fare.traveller_id for fare in confirmed(fares, cancelled)]
    chosen = [traveller_id for traveller_id in still if not requested or traveller_id in requested]
    remaining = tuple(traveller_id for traveller_id in still if traveller_id not in chosen)
    if remaining and not product.partial_cancellation():
        raise Refused(Refusal.CANCELLATION_DISALLOWED,
                      f"the product cannot be cancelled: {PARTIAL_NOT_ALLOWED} (its policy cancels every traveller "
                      f"at once: {', '.join(still)})")
    return Share(tuple(chosen), share_of(fares, chosen), remaining)


def remaining_share(fares: Sequence[Fare], cancelled: Collection[str]) -> Money:
    """What the travellers still confirmed paid: what a later flow of the product concerns."""
    return share_of(fares, [fare.traveller_id for fare in confirmed(fares, cancelled)])


def scaled(amount: Money, fares: Sequence[Fare], cancelled: Collection[str]) -> Money:
    """``amount`` (a price of the whole product: a change fee, a fare difference) scaled to the share of the
    travellers who remain, rounded half-up once; unchanged while nobody is cancelled."""
    if not cancelled:
        return amount
    whole = total(fare.amount for fare in fares)
    if whole.is_zero():
        return amount
    exact = Fraction(amount.amount) * Fraction(remaining_share(fares, cancelled).amount) / Fraction(whole.amount)
    return Money.of(round_half_up(exact, amount.currency), amount.currency)


def for_remaining(alternative: ChangeAlternative, price: Money, fares: Sequence[Fare],
                  cancelled: Collection[str]) -> ChangeAlternative:
    """A change alternative priced for the whole product (the supplier prices what was sold), as it
    concerns the travellers who remain: its fare difference and change fee scaled to their share,
    and the itinerary's new fares theirs alone; a cancelled traveller's fare stays what was refunded
    from. Unchanged while nobody is cancelled."""
    if not any(fare.traveller_id in cancelled for fare in fares):
        return alternative
    difference = scaled(alternative.charges.fare_difference, fares, cancelled)
    fee = scaled(alternative.charges.change_fee, fares, cancelled)
    due = fee if difference.is_negative() else difference + fee
    charges = ChangeCharges(fare_difference=difference, change_fee=fee, total_due=due)
    staying = confirmed(fares, cancelled)
    moved = {fare.traveller_id: fare for fare in
             rescaled(staying, total(fare.amount for fare in staying) + (due - fee))}
    new_fares = [moved.get(fare.traveller_id, fare) for fare in fares]
    itinerary = alternative.itinerary.model_copy(update={"price": price + (due - fee), "fares": new_fares})
    return ChangeAlternative(itinerary=type(itinerary).model_validate(itinerary.model_dump()), charges=charges)
