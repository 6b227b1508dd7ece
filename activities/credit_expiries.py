"""Recording a credit's expiry (docs/settlement.md#credits): what the ``CreditExpiryWorkflow`` does when
the credit's validity ends. It calls this method by reference; the name it is registered under is what
histories and scheduled activities carry, so it never changes."""

from __future__ import annotations

from datetime import datetime

import structlog
from temporalio import activity

from domain.credit_ledger import CreditState
from ports.recording import CreditStore

log = structlog.get_logger("credits")


class CreditActivities:
    def __init__(self, store: CreditStore) -> None:
        self._store = store

    @activity.defn(name="expire_credit")
    async def expire_credit(self, credit_id: str, at: datetime) -> CreditState | None:
        """The credit's state once its expiry is recorded: ``expired`` (now, or by an earlier attempt),
        ``used`` (nothing was left to expire), None for a credit that was never issued."""
        state = await self._store.expire(credit_id, at)
        log.info("credit_expiry", credit_id=credit_id, at=at.isoformat(), state=state)
        return state
