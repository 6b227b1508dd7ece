"""Counts an operator scrapes (docs/operations.md#metrics): flows by kind and status, the agent's queue,
flows still waiting past their deadline, trigger deliveries by outcome, and flows parked on a refused record.

Read from the database at scrape time: every gateway and every worker writes these rows, so the
database is the one place where the counts are whole, whichever process is scraped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from store.db import Repository
from store.schema import events, flows

# The agent's queue (docs/api.md#get-v1agentcancellations): manual cancellations awaiting a quote.
AGENT_QUEUE = ("cancellation", "awaiting_agent_quote")


@dataclass(frozen=True)
class Tally:
    flows: dict[tuple[str, str], int]  # (kind, status) → flows
    agent_queue_depth: int
    agent_queue_oldest_s: float  # 0 when the queue is empty
    deliveries: dict[str, int]  # delivery status (pending | delivered | failed) → events
    delivery_attempts: int
    # Flows parked on a record the store refused for good (docs/operations.md#a-refused-record), by kind.
    records_refused: dict[str, int]
    # Flows still waiting for someone after their deadline passed, by kind, and how far past it the
    # oldest is (0: none): the deadline's outcome (expired, no_response, the default) is not recorded yet.
    past_deadline: dict[str, int]
    past_deadline_oldest_s: float


class Tallies(Repository):
    async def count(self) -> Tally:
        kind, status = AGENT_QUEUE
        async with self._reading() as conn:
            by_status = (
                await conn.execute(sa.select(flows.c.kind, flows.c.status, sa.func.count()).group_by(flows.c.kind, flows.c.status))
            ).all()
            depth, oldest = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(flows.c.created_at)).where(flows.c.kind == kind, flows.c.status == status)
                )
            ).one()
            deliveries = (
                await conn.execute(sa.select(events.c.delivery_status, sa.func.count()).group_by(events.c.delivery_status))
            ).all()
            attempts = (await conn.execute(sa.select(sa.func.coalesce(sa.func.sum(events.c.attempts), 0)))).scalar_one()
            # Through the partial index ix_flows_record_refused: the parked flows only.
            refused = (await conn.execute(
                sa.select(flows.c.kind, sa.func.count()).where(flows.c.record_refused_at.is_not(None)).group_by(flows.c.kind)
            )).all()
            # A range of ix_flows_deadline_created: only flows waiting for someone have a deadline.
            past = (await conn.execute(
                sa.select(flows.c.kind, sa.func.count(), sa.func.min(flows.c.deadline))
                .where(flows.c.deadline < datetime.now(timezone.utc)).group_by(flows.c.kind)
            )).all()
        return Tally(
            flows={(row[0], row[1]): int(row[2]) for row in by_status},
            agent_queue_depth=int(depth),
            agent_queue_oldest_s=_age(oldest),
            deliveries={row[0]: int(row[1]) for row in deliveries},
            delivery_attempts=int(attempts),
            records_refused={row[0]: int(row[1]) for row in refused},
            past_deadline={row[0]: int(row[1]) for row in past},
            past_deadline_oldest_s=max((_age(row[2]) for row in past), default=0.0),
        )


def _age(since: datetime | str | None) -> float:
    if since is None:
        return 0.0
    # An aggregate skips the column's type on SQLite: the raw stored text comes back.
    at = datetime.fromisoformat(since) if isinstance(since, str) else since
    at = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - at).total_seconds())
