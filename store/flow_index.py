"""The flows index and the one-active-flow-per-product lock.

The index is a projection of the workflows (docs/flows.md#how-a-flow-starts): a flow is opened
here (lock, index row and the workflow's input, in one transaction) just before its workflow is
started, and from then on only the workflow writes it, through ``record_flow``, each transition
with its version so that an older write never overwrites a newer one. ``record_flow`` is also the
outbox write: the flow's new state and the event reporting it land in one transaction, so an
event is never lost nor reported for a state that was not stored. The words a flow is found by
(``store.flow_search``) are written with its index row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from config.telemetry import current_traceparent
from domain.flow_info import FlowRecord, event_body
from ports.recording import LockOutcome, RecordRefused
from store.credit_records import book_credits
from store.db import Repository, insert_many_once, insert_once, refused_for_good
from store.flow_search import write_search_terms, write_search_terms_many
from store.money_effects import book_transition
from store.reservation_records import cancel_travellers
from store.schema import events, flows, partners, product_locks, products, quotes

# What a refusal's reason keeps of the database's message: enough to say which constraint or value.
REFUSAL_REASON_LENGTH = 500


class FlowInProgress(Exception):
    def __init__(self, holder: str) -> None:
        super().__init__(f"product has an active flow {holder}")
        self.holder = holder


class QuoteUsed(Exception):
    """The quote started another flow already: a quote is used once."""

    def __init__(self, used_by: str) -> None:
        super().__init__(f"the quote started {used_by}")
        self.used_by = used_by


@dataclass(frozen=True)
class Unstarted:
    """A flow opened whose workflow has not recorded anything yet: maybe never started."""

    code: str
    kind: str
    start_input: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class QueuePosition:
    """Where a page of a queue ends: its last flow's deadline (None: it waits for nobody) and code.

    The queue is ordered by deadline, nearest first, then by code; a cursor names a position in
    that order, so a flow that leaves or joins the queue between two pages neither repeats nor
    hides another one.
    """

    deadline: datetime | None
    code: str

    def cursor(self) -> str:
        """``<deadline in µs since the epoch>.<code>``, ``-.<code>`` without a deadline: URL-safe as it is."""
        micros = "-" if self.deadline is None else str(_micros(self.deadline))
        return f"{micros}.{self.code}"

    @classmethod
    def parse(cls, cursor: str) -> QueuePosition:
        """The position a :meth:`cursor` names; ``ValueError`` for anything else."""
        micros, dot, code = cursor.partition(".")
        if not dot or not code or not (micros == "-" or _MICROS.fullmatch(micros)):
            raise ValueError("not a cursor this list gave")
        deadline = None if micros == "-" else _EPOCH + timedelta(microseconds=int(micros))
        return cls(deadline, code)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# ASCII digits only, and few enough (up to the year 5138) that the deadline they name is a datetime.
_MICROS = re.compile(r"[0-9]{1,17}")


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class FlowRow:
    partner_id: str
    status: str
    info: dict[str, Any]  # the flow info as last recorded
    created_at: datetime


def _index_row(record: FlowRecord, start_input: dict[str, Any], opened_by: str | None,
               disruption_id: str | None = None) -> dict[str, Any]:
    return {
        "code": record.code,
        "kind": str(record.kind),
        "product_id": record.product_id,
        "reservation_id": record.reservation_id,
        "partner_id": record.partner_id,
        "status": record.status,
        "info": record.info,
        "created_at": record.at,
        "updated_at": record.at,
        # 0 however many moves the opening holds (an automatic cancellation's ``processing``): the
        # workflow has recorded nothing yet, which is what the reconciler looks for (``unstarted``).
        "version": 0,
        "start_input": start_input,
        "opened_by": opened_by,
        "deadline": record.deadline,
        "disruption_id": disruption_id,
    }


async def _use_quote(conn: AsyncConnection, quote_id: str, code: str) -> None:
    """Mark the quote used by ``code``, in the transaction that opens the flow; once only."""
    used = await conn.execute(
        quotes.update().where(quotes.c.quote_id == quote_id, quotes.c.used_by.is_(None)).values(used_by=code)
    )
    if used.rowcount != 1:
        holder = (await conn.execute(sa.select(quotes.c.used_by).where(quotes.c.quote_id == quote_id))).scalar_one()
        raise QuoteUsed(holder or "unknown")


@dataclass(frozen=True)
class RefusedRow:
    """A flow parked on a refused record, as its row says: its stored status is the one before the refused move."""

    code: str
    kind: str
    partner_id: str
    status: str
    reason: str
    since: datetime


class FlowIndex(Repository):
    # --- starting a flow ------------------------------------------------------------------

    async def open(
        self, record: FlowRecord, start_input: dict[str, Any], opened_by: str | None = None, quote_id: str | None = None
    ) -> bool:
        """Take the product's lock, use the quote (if any) and index the flow with its workflow's
        input, atomically; raise :class:`FlowInProgress` or :class:`QuoteUsed`.

        False, changing nothing, when this flow is indexed already: a retry of the request that
        opened it (the same Idempotency-Key names the same flow code).
        """
        async with self._writing() as conn:
            # The index row first, once: a flow indexed already (a retry, or its twin racing) is found
            # by this insert, with no look before it (one statement fewer in the opening write). A
            # refusal below raises, and the transaction takes the row back.
            if not await insert_once(conn, flows, _index_row(record, start_input, opened_by), key=("code",)):
                return False
            locked = await insert_once(
                conn, product_locks, {"product_id": record.product_id, "flow_code": record.code, "acquired_at": record.at}
            )
            if not locked:
                holder = (
                    await conn.execute(
                        sa.select(product_locks.c.flow_code).where(product_locks.c.product_id == record.product_id)
                    )
                ).scalar_one_or_none()
                raise FlowInProgress(holder or "unknown")
            if quote_id is not None:
                await _use_quote(conn, quote_id, record.code)
            await write_search_terms(conn, record)
            return True

    async def index(self, record: FlowRecord, start_input: dict[str, Any], opened_by: str | None = None) -> bool:
        """Index a flow without taking the product's lock: a schedule change takes it in its workflow,
        when its turn comes. False when the flow is indexed already (a re-delivered push)."""
        async with self._writing() as conn:
            indexed = await insert_once(conn, flows, _index_row(record, start_input, opened_by))
            if indexed:
                await write_search_terms(conn, record)
            return indexed

    async def index_many(self, opened: list[tuple[FlowRecord, dict[str, Any]]], disruption_id: str | None = None) -> int:
        """:meth:`index` for many flows at once, in one transaction (a disruption's batch: one commit, not
        one per flow), each marked with the disruption that starts it; flows indexed already are left as
        they are. How many were new."""
        async with self._writing() as conn:
            # Three statements and a bulk insert, not three statements per flow.
            known = set((await conn.execute(sa.select(flows.c.code).where(
                flows.c.code.in_([record.code for record, _input in opened])))).scalars().all())
            fresh = [(record, start_input) for record, start_input in opened if record.code not in known]
            await insert_many_once(conn, flows, [_index_row(record, start_input, None, disruption_id)
                                                 for record, start_input in fresh])
            await write_search_terms_many(conn, [record for record, _input in fresh])
        return len(fresh)

    async def statuses(self, codes: list[str]) -> dict[str, str]:
        """The status of each of ``codes`` that is indexed."""
        async with self._reading() as conn:
            rows = (await conn.execute(sa.select(flows.c.code, flows.c.status).where(flows.c.code.in_(codes)))).all()
        return {row.code: row.status for row in rows}

    async def start_input(self, code: str, opened_by: str) -> dict[str, Any] | None:
        """The workflow input of the flow ``code`` if ``opened_by`` opened it; None otherwise."""
        async with self._reading() as conn:
            row = (
                await conn.execute(
                    sa.select(flows.c.start_input).where(flows.c.code == code, flows.c.opened_by == opened_by)
                )
            ).first()
        return None if row is None else row.start_input

    async def unstarted(self, opened_before: datetime, limit: int,
                        after: tuple[datetime, str] | None = None) -> list[Unstarted]:
        """Flows opened before ``opened_before`` whose workflow has recorded nothing yet: their start
        may have been interrupted (the reconciler in the worker starts them; starting is idempotent).
        Oldest first, strictly after ``after`` (the opening time and code of the last one seen)."""
        query = (
            sa.select(flows.c.code, flows.c.kind, flows.c.start_input, flows.c.created_at)
            .where(flows.c.version == 0, flows.c.created_at < opened_before, flows.c.start_input.is_not(None))
            .order_by(flows.c.created_at, flows.c.code)
            .limit(limit)
        )
        if after is not None:
            query = query.where(sa.tuple_(flows.c.created_at, flows.c.code) > sa.tuple_(*after))
        async with self._reading() as conn:
            rows = (await conn.execute(query)).all()
        return [Unstarted(row.code, row.kind, row.start_input, row.created_at) for row in rows]

    async def product_flows(self, product_id: str, kind: str) -> dict[str, str]:
        """The product's flows of ``kind``: code → status, oldest first (domain.involuntary asks them)."""
        async with self._reading() as conn:
            rows = (await conn.execute(
                sa.select(flows.c.code, flows.c.status).where(flows.c.product_id == product_id, flows.c.kind == kind)
                .order_by(flows.c.created_at, flows.c.code)
            )).all()
        return {row.code: row.status for row in rows}

    async def lock_holders(self, product_ids: list[str]) -> dict[str, str]:
        """The flow holding each of ``product_ids`` that is held: product id → flow code."""
        async with self._reading() as conn:
            rows = (await conn.execute(sa.select(product_locks.c.product_id, product_locks.c.flow_code)
                                       .where(product_locks.c.product_id.in_(product_ids)))).all()
        return {row.product_id: row.flow_code for row in rows}

    async def lock_holder(self, product_id: str) -> str | None:
        async with self._reading() as conn:
            return (
                await conn.execute(sa.select(product_locks.c.flow_code).where(product_locks.c.product_id == product_id))
            ).scalar_one_or_none()

    # --- the FlowStore port ---------------------------------------------------------------

    async def record_flow(self, record: FlowRecord) -> bool:
        try:
            return await self._record_flow(record)
        except Exception as error:
            raise await self._refused(record.code, error) from error

    async def open_waiting(self, waiting: FlowRecord, offered: FlowRecord) -> tuple[LockOutcome, bool]:
        try:
            async with self._writing() as conn:
                await _write_record(conn, waiting)
                outcome = await _take_lock(conn, waiting.product_id, waiting.code, waiting.at)
                push = await _write_record(conn, offered) if outcome == "acquired" else False
        except Exception as error:
            raise await self._refused(waiting.code, error) from error
        return outcome, push

    async def _refused(self, code: str, error: Exception) -> Exception:
        """``error`` itself, unless the store refused the record for good: then the flow is marked parked
        and :class:`RecordRefused` is what to raise."""
        if not refused_for_good(error):
            return error
        # The transaction rolled back: nothing of the record is written. The flow's row says it is
        # parked (the admin's list, the gateway's gauge), in a transaction of its own; should that
        # fail too, its error is raised instead, and the activity retried as after an outage.
        reason = f"{type(error).__name__}: {error}"[:REFUSAL_REASON_LENGTH]
        await self._mark_refused(code, reason)
        return RecordRefused(reason)

    async def _mark_refused(self, code: str, reason: str) -> None:
        async with self._writing() as conn:
            await conn.execute(flows.update().where(flows.c.code == code)
                               .values(record_refused=reason, record_refused_at=datetime.now(timezone.utc)))

    async def refused_records(self, limit: int) -> list[RefusedRow]:
        """The flows parked on a record the store refused, the longest parked first."""
        async with self._reading() as conn:
            rows = (await conn.execute(
                sa.select(flows.c.code, flows.c.kind, flows.c.partner_id, flows.c.status, flows.c.record_refused,
                          flows.c.record_refused_at)
                .where(flows.c.record_refused_at.is_not(None))
                .order_by(flows.c.record_refused_at, flows.c.code).limit(limit)
            )).all()
        return [RefusedRow(code=row.code, kind=row.kind, partner_id=row.partner_id, status=row.status,
                           reason=row.record_refused or "", since=row.record_refused_at) for row in rows]

    async def _record_flow(self, record: FlowRecord) -> bool:
        async with self._writing() as conn:
            return await _write_record(conn, record)

    async def acquire(self, product_id: str, flow_code: str, at: datetime) -> LockOutcome:
        async with self._writing() as conn:
            return await _take_lock(conn, product_id, flow_code, at)

    # --- reading flows --------------------------------------------------------------------

    async def flow(self, code: str) -> FlowRow | None:
        async with self._reading() as conn:
            row = (
                await conn.execute(
                    sa.select(flows.c.partner_id, flows.c.status, flows.c.info, flows.c.created_at).where(
                        flows.c.code == code
                    )
                )
            ).first()
        return None if row is None else FlowRow(row.partner_id, row.status, row.info, row.created_at)

    async def queue(
        self, kind: str, status: str | None, limit: int, after: QueuePosition | None
    ) -> tuple[list[dict[str, Any]], QueuePosition | None]:
        """Flow infos of ``kind`` (with ``status``), nearest deadline first, then by code; flows that
        wait for nobody come last. Returns one page and the position of its end when more follow."""
        query = (
            sa.select(flows.c.info, flows.c.deadline, flows.c.code)
            .where(flows.c.kind == kind)
            .order_by(flows.c.deadline.asc().nulls_last(), flows.c.code)
            .limit(limit + 1)
        )
        if status:
            query = query.where(flows.c.status == status)
        if after is not None:
            if after.deadline is None:
                query = query.where(flows.c.deadline.is_(None), flows.c.code > after.code)
            else:
                query = query.where(
                    sa.or_(
                        flows.c.deadline > after.deadline,
                        sa.and_(flows.c.deadline == after.deadline, flows.c.code > after.code),
                        flows.c.deadline.is_(None),
                    )
                )
        async with self._reading() as conn:
            rows = (await conn.execute(query)).all()
        page = rows[:limit]
        more = len(rows) > limit
        return [row.info for row in page], QueuePosition(page[-1].deadline, page[-1].code) if more else None


async def _write_record(conn: AsyncConnection, record: FlowRecord) -> bool:
    """One transition in the caller's transaction: the flow row, its event once, the lock released when
    terminal, the money it moves; True when the event is to be pushed (the partner has a webhook)."""
    push = False
    # Never behind: a late retry of an older transition leaves the newer one in place.
    await conn.execute(
        flows.update()
        .where(flows.c.code == record.code, flows.c.version <= record.version)
        .values(status=record.status, info=record.info, updated_at=record.at, version=record.version,
                deadline=record.deadline, record_refused=None, record_refused_at=None)
    )
    if record.event_type and record.event_id:
        push = bool(
            (
                await conn.execute(
                    sa.select(partners.c.webhook_url).where(partners.c.partner_id == record.partner_id)
                )
            ).scalar_one_or_none()
        )
        await insert_once(conn, events, {
            "event_id": record.event_id,
            "partner_id": record.partner_id,
            "type": record.event_type,
            "flow_code": record.code,
            "payload": event_body(record.event_id, record.event_type, record.at, record.info),
            "created_at": record.at,
            "delivery_status": "pending",
            "attempts": 0,
            # The flow starts its delivery itself; without a webhook, the outbox
            # dispatcher starts it once the partner sets one (docs/triggers.md#delivery).
            "dispatched_at": record.at if push else None,
            "traceparent": current_traceparent(),
        })
    if record.terminal:
        await conn.execute(
            product_locks.delete().where(
                product_locks.c.product_id == record.product_id, product_locks.c.flow_code == record.code
            )
        )
    # The money the transition moves, in its transaction and once (docs/settlement.md), and
    # the credit it issues or takes from (docs/settlement.md#credits).
    await book_transition(conn, record)
    await book_credits(conn, record)
    # The travellers a partial cancellation cancelled (docs/api.md#partial-cancellation).
    await cancel_travellers(conn, record)
    return push


async def _take_lock(conn: AsyncConnection, product_id: str, flow_code: str, at: datetime) -> LockOutcome:
    """The product's lock for ``flow_code``, in the caller's transaction (``FlowStore.acquire``)."""
    holder = (
        await conn.execute(sa.select(product_locks.c.flow_code).where(product_locks.c.product_id == product_id))
    ).scalar_one_or_none()
    if holder == flow_code:
        return "acquired"
    status = (
        await conn.execute(sa.select(products.c.status).where(products.c.product_id == product_id))
    ).scalar_one_or_none()
    if status in (None, "cancelled"):
        return "product_cancelled"
    # The primary key decides a race with a flow starting now, as in :meth:`open`.
    if holder is None and await insert_once(
        conn, product_locks, {"product_id": product_id, "flow_code": flow_code, "acquired_at": at}
    ):
        return "acquired"
    return "busy"
