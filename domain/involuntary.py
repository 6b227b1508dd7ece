"""Involuntary cancellations (docs/flows.md#involuntary-cancellations): a traveller never pays a
penalty for the airline's decision. The rule lives here once; the quote, the cancellation flow, the
agent's quote check and the change's fee all ask it.

A cancellation is involuntary when the supplier changed the product: it has a rescheduling that is
not finished (any status, ``waiting_for_product`` included) or that ended with the flight changed or
cancelled (``accepted``, ``auto_accepted``). A rescheduling that ended ``obsolete`` (the product was
cancelled first) or ``failed`` (the supplier refused: the flight is as booked) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.change_pricing import ChangeAlternative
from domain.flow_info import is_terminal
from domain.money import Money
from domain.refund_terms import CancellationTerms
from domain.waivers import GRANTED_BY_RULE, SCHEDULE_CHANGE, Waiver, penalty_waived

# Rescheduling outcomes that changed or cancelled the flight.
CHANGED_THE_FLIGHT: frozenset[str] = frozenset({"accepted", "auto_accepted"})


def changed_by_supplier(status: str) -> bool:
    """A rescheduling in ``status`` makes the product's cancellation involuntary."""
    return not is_terminal(status) or status in CHANGED_THE_FLIGHT


def is_involuntary(rescheduling_statuses: Iterable[str]) -> bool:
    """The product, with reschedulings in these statuses, is cancelled involuntarily."""
    return any(changed_by_supplier(status) for status in rescheduling_statuses)


def change_unfinished(rescheduling_statuses: Iterable[str]) -> bool:
    """A change booked now carries no fee (a rescheduling of the product is still open)."""
    return any(not is_terminal(status) for status in rescheduling_statuses)


def schedule_change_waiver(policy_penalty: Money | None, paid: Money) -> Waiver:
    """The waiver an involuntary cancellation carries: the whole policy penalty given up."""
    return Waiver(code=SCHEDULE_CHANGE, note=None, granted_by=GRANTED_BY_RULE,
                  penalty_waived=penalty_waived(policy_penalty, Money.zero(paid.currency)))


def involuntary_terms(paid: Money) -> tuple[Money, Money]:
    """Penalty and refund of an involuntary cancellation: nothing charged, all of ``paid`` back."""
    return Money.zero(paid.currency), paid


def check_involuntary_quote(penalty: Money) -> list[tuple[str, str]]:
    """An agent's quote of an involuntary cancellation may charge no penalty."""
    if penalty.is_zero():
        return []
    return [("penalty.amount", "the airline changed this flight: the cancellation is involuntary and carries no penalty")]


def involuntary_cancellation_terms(terms: CancellationTerms) -> CancellationTerms:
    """What cancelling costs once involuntary: automatic at penalty 0, whatever the product's policy;
    a product that cannot be cancelled at all (already cancelled, its dates passed, busy) stays so."""
    if terms.resolution is None:
        return terms
    penalty, refund = involuntary_terms(terms.paid)
    return CancellationTerms("allowed", [], terms.paid, penalty, refund)


def without_change_fee(alternative: ChangeAlternative) -> ChangeAlternative:
    """A change booked while the product's rescheduling is unfinished: the fare difference only."""
    charges = alternative.charges
    zero = Money.zero(charges.change_fee.currency)
    return alternative.model_copy(update={"charges": charges.model_copy(update={
        "change_fee": zero, "total_due": charges.total_due - charges.change_fee})})
