"""Finding flows (docs/api.md#finding-flows): the words a flow is found by, and the lists of flows that
agents and partners page through.

**Search terms.** A flow is found by its code, its reservation id and its product id (the whole id, or
what follows its prefix: ``CAN-EV4R8M76`` by ``can-ev4r`` or ``ev4r``), and by any word of its partner's
name or of its travellers' names. Each of these becomes normalised terms (case-folded, accents dropped),
one ``flow_search`` row each, written by :func:`write_search_terms` in the transaction that indexes the
flow (``store.flow_index``): a flow is found from the moment it exists. A query word matches the terms it
begins: one range of the table's primary key, ``[word, word with its last character's successor)``, so
finding the flows of a word reads the index, never the flows one by one.

**Lists.** The agents' list is ordered by deadline, nearest first, then newest (the flows that wait for
nobody come after those that wait for someone); a partner's list by newest. Both page by keyset: a page
ends at a :class:`ListPosition` and the next starts strictly after it, so flows that arrive between two
pages neither repeat nor hide another.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from domain.flow_info import FlowRecord
from store.db import Repository, insert_many_once
from store.schema import SEARCH_TERM_LENGTH, flow_search, flows, partners, products, reservations

# More words than this in one query is not a search an agent types.
MAX_QUERY_WORDS = 8
# How many flows a word may match and still be where the search starts: its flows are gathered from the
# index, then ordered. A commoner word is checked flow by flow along the list's order instead, where its
# first page comes early. With other words to match too, a page may lie far along that order (Acme's
# flows with a traveller called Ada), so the rarest word is gathered even when it is fairly common.
RARE_WORD = 1_000
RARE_AMONG_WORDS = 20_000

_ALNUM_RUN = re.compile(r"[^\W_]+")
_NOT_ALNUM_AT_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
_QUERY_SEPARATORS = re.compile(r"[\s,;]+")


def normalised(text: str) -> str:
    """Case-folded, compatibility-decomposed, without combining marks: ``Müller`` and ``MULLER`` are ``muller``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _trimmed(word: str) -> str:
    return _NOT_ALNUM_AT_EDGES.sub("", word)[:SEARCH_TERM_LENGTH]


def name_terms(name: str) -> set[str]:
    """Each word of a name as written (``jean-luc``, ``o'brien``), and each run of letters and digits
    in it (``jean``, ``luc``, ``o``, ``brien``)."""
    terms: set[str] = set()
    for chunk in normalised(name).split():
        terms.add(_trimmed(chunk))
        terms.update(run[:SEARCH_TERM_LENGTH] for run in _ALNUM_RUN.findall(chunk))
    terms.discard("")
    return terms


def id_terms(identifier: str) -> set[str]:
    """An id whole (``can-ev4r8m76``) and what follows its prefix (``ev4r8m76``): the prefix alone
    (``can``, ``res``) would match every flow of its kind."""
    whole = normalised(identifier)
    _prefix, dash, rest = whole.partition("-")
    return {term[:SEARCH_TERM_LENGTH] for term in (whole, rest if dash else "") if term}


def flow_terms(code: str, reservation_id: str, product_id: str, partner_name: str | None,
               travellers: Iterable[str]) -> set[str]:
    terms = id_terms(code) | id_terms(reservation_id) | id_terms(product_id)
    for name in (partner_name or "", *travellers):
        terms |= name_terms(name)
    return terms


def query_words(query: str) -> tuple[str, ...]:
    """The words of a search, normalised as terms are; ``ValueError`` for more than :data:`MAX_QUERY_WORDS`."""
    words = tuple(dict.fromkeys(w for w in map(_trimmed, _QUERY_SEPARATORS.split(normalised(query))) if w))
    if len(words) > MAX_QUERY_WORDS:
        raise ValueError(f"at most {MAX_QUERY_WORDS} words")
    return words


def traveller_names(travellers: Any) -> list[str]:
    """The names in a reservation's ``travellers`` column."""
    return [str(t["name"]) for t in travellers or [] if isinstance(t, dict) and t.get("name")]


async def write_search_terms(conn: AsyncConnection, record: FlowRecord) -> None:
    """The terms the flow of ``record`` is found by, in the caller's transaction (the one indexing the flow)."""
    partner_name, travellers = (await conn.execute(sa.select(
        sa.select(partners.c.name).where(partners.c.partner_id == record.partner_id).scalar_subquery(),
        sa.select(reservations.c.travellers).where(reservations.c.reservation_id == record.reservation_id)
        .scalar_subquery(),
    ))).one()
    terms = flow_terms(record.code, record.reservation_id, record.product_id, partner_name, traveller_names(travellers))
    await conn.execute(flow_search.insert(), [{"term": term, "code": record.code} for term in sorted(terms)])


async def write_search_terms_many(conn: AsyncConnection, records: list[FlowRecord]) -> None:
    """:func:`write_search_terms` for many flows in three statements, whatever their number (a
    disruption's batch): their partners' names, their reservations' travellers, then every term.
    A term written already is left as it is (a batch retried while its first attempt still ran)."""
    if not records:
        return
    names = dict((await conn.execute(sa.select(partners.c.partner_id, partners.c.name).where(
        partners.c.partner_id.in_({record.partner_id for record in records})))).all())
    travellers = dict((await conn.execute(sa.select(reservations.c.reservation_id, reservations.c.travellers).where(
        reservations.c.reservation_id.in_({record.reservation_id for record in records})))).all())
    rows = [{"term": term, "code": record.code}
            for record in records
            for term in sorted(flow_terms(record.code, record.reservation_id, record.product_id,
                                          names.get(record.partner_id), traveller_names(travellers.get(record.reservation_id))))]
    await insert_many_once(conn, flow_search, rows)


def _starting_with(word: str) -> sa.ColumnElement[bool]:
    """The terms ``word`` begins: a range of the primary key (terms compare byte by byte, and a query
    word ends with a letter or digit, so its last character always has a successor)."""
    successor = word[:-1] + chr(ord(word[-1]) + 1)
    return sa.and_(flow_search.c.term >= word, flow_search.c.term < successor)


# --- the lists ------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def _at(micros: Any) -> datetime:
    if isinstance(micros, bool) or not isinstance(micros, int) or not 0 <= micros <= _micros(_LATEST):
        raise ValueError("not a time this list gave")
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class ListPosition:
    """The last flow of a page: its deadline (None: it waits for nobody), creation time and code."""

    deadline: datetime | None
    created_at: datetime
    code: str

    def to_json(self) -> list[Any]:
        return [None if self.deadline is None else _micros(self.deadline), _micros(self.created_at), self.code]

    @classmethod
    def from_json(cls, value: Any) -> ListPosition:
        """The position :meth:`to_json` wrote; ``ValueError`` for anything else."""
        if not isinstance(value, list) or len(value) != 3:
            raise ValueError("not a position this list gave")
        deadline, created_at, code = value
        if not isinstance(code, str) or not 0 < len(code) <= 20:
            raise ValueError("not a position this list gave")
        return cls(None if deadline is None else _at(deadline), _at(created_at), code)


@dataclass(frozen=True)
class FlowFilter:
    """What a list is narrowed to; None (or no words) narrows nothing."""

    words: tuple[str, ...] = ()
    kind: str | None = None
    status: str | None = None
    partner_id: str | None = None
    reservation_id: str | None = None
    product_id: str | None = None
    deadline_before: datetime | None = None
    disruption_id: str | None = None


@dataclass(frozen=True)
class ListedFlow:
    code: str
    kind: str
    status: str
    partner_id: str
    partner_name: str | None
    reservation_id: str
    product_id: str
    product_kind: str | None
    travellers: list[str]
    deadline: datetime | None
    created_at: datetime
    updated_at: datetime


def _listed(page: sa.Subquery) -> sa.Select[Any]:
    """The flows of ``page`` (a subquery of codes) as a list shows them. The page is chosen first and
    only its flows are joined to their partner, product and reservation, however many matched."""
    return sa.select(
        flows.c.code, flows.c.kind, flows.c.status, flows.c.partner_id, partners.c.name.label("partner_name"),
        flows.c.reservation_id, flows.c.product_id, products.c.kind.label("product_kind"), reservations.c.travellers,
        flows.c.deadline, flows.c.created_at, flows.c.updated_at,
    ).select_from(
        page.join(flows, flows.c.code == page.c.code)
        .outerjoin(partners, partners.c.partner_id == flows.c.partner_id)
        .outerjoin(products, products.c.product_id == flows.c.product_id)
        .outerjoin(reservations, reservations.c.reservation_id == flows.c.reservation_id)
    )


def _stretch(number: int, conditions: list[sa.ColumnElement[bool]], order: tuple[sa.UnaryExpression[Any], ...],
             limit: int) -> sa.Select[Any]:
    """The codes of one stretch of a list (its first ``limit`` in ``order``), numbered in the list's order."""
    codes = sa.select(flows.c.code).where(*conditions).order_by(*order).limit(limit).subquery()
    return sa.select(codes.c.code, sa.literal(number).label("stretch"))


async def _read(conn: AsyncConnection, stretches: list[sa.Select[Any]], limit: int) -> list[Any]:
    """The first ``limit`` flows of the stretches, in the list's order, in one statement."""
    page = sa.union_all(*stretches).subquery()
    return list((await conn.execute(_listed(page).order_by(page.c.stretch, *_NEAREST_FIRST).limit(limit))).all())


def _newest_first_after(after: ListPosition | None) -> list[sa.ColumnElement[bool]]:
    """Strictly after ``after`` in (created_at, code) descending; the ``<=`` lets the index seek to it."""
    if after is None:
        return []
    return [flows.c.created_at <= after.created_at,
            sa.or_(flows.c.created_at < after.created_at, flows.c.code < after.code)]


def _nearest_first_after(after: ListPosition | None) -> list[sa.ColumnElement[bool]]:
    """Strictly after ``after`` in (deadline ascending, created_at and code descending)."""
    if after is None or after.deadline is None:
        return []
    return [flows.c.deadline >= after.deadline, sa.or_(
        flows.c.deadline > after.deadline, flows.c.created_at < after.created_at,
        sa.and_(flows.c.created_at == after.created_at, flows.c.code < after.code),
    )]


_NEWEST_FIRST = (flows.c.created_at.desc(), flows.c.code.desc())
_NEAREST_FIRST = (flows.c.deadline.asc(), *_NEWEST_FIRST)


class _NotThroughAnIndex(sa.ColumnElement[Any]):
    """A column that the database must not reach through an index: SQLite's unary ``+``."""

    # The column is part of the statement's cache key: ``+status`` and ``+partner_id`` are two statements.
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]
    inherit_cache = True

    def __init__(self, column: sa.ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(_NotThroughAnIndex)
def _as_it_is(element: _NotThroughAnIndex, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(_NotThroughAnIndex, "sqlite")
def _with_unary_plus(element: _NotThroughAnIndex, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))


def _through_an_index(column: sa.ColumnElement[Any], allowed: bool) -> sa.ColumnElement[Any]:
    return column if allowed else _NotThroughAnIndex(column)


@dataclass(frozen=True)
class _Narrowed:
    """A filter as the conditions of each stretch of a list, each saying which index is to walk it.

    SQLite follows what it is told (:class:`_NotThroughAnIndex`): left to itself it ranks an equality on
    any index's first column as selective, ``deadline IS NULL`` included, and prefers the index that also
    gives the order, so it would read every finished flow to find one partner's. PostgreSQL plans from its
    statistics either way. Three indexes can lead: the one that names a few flows (the terms of a rare
    word, a product's, a reservation's), whose flows are gathered and then ordered; a partner's or a
    status's, newest first; and the deadline's (the flows waiting for someone are few, nearest first; the
    partial index of the others, newest first).
    """

    where: FlowFilter
    words: list[sa.ColumnElement[bool]]
    few: bool  # a rare word, a product, a reservation or a disruption

    def _conditions(self, deadline_leads: bool, listed_leads: bool) -> list[sa.ColumnElement[bool]]:
        where = self.where
        found = [column == value for column, value in (
            (flows.c.kind, where.kind), (flows.c.reservation_id, where.reservation_id), (flows.c.product_id, where.product_id),
            (flows.c.disruption_id, where.disruption_id),
            (_through_an_index(flows.c.status, listed_leads), where.status),
            (_through_an_index(flows.c.partner_id, listed_leads), where.partner_id),
        ) if value is not None]
        if where.deadline_before is not None:
            found.append(_through_an_index(flows.c.deadline, deadline_leads) < where.deadline_before)
        return found + self.words

    def waiting(self) -> list[sa.ColumnElement[bool]]:
        """The flows waiting for someone: few, so the deadline index leads unless a few flows are named."""
        return [*self._conditions(not self.few, False), _through_an_index(flows.c.deadline, not self.few).is_not(None)]

    def waiting_for_nobody(self) -> list[sa.ColumnElement[bool]]:
        """The others, most flows: a partner's or a status's index leads if there is one to."""
        listed = not self.few and (self.where.partner_id is not None or self.where.status is not None)
        deadline_leads = not self.few and not listed
        return [*self._conditions(deadline_leads, listed), _through_an_index(flows.c.deadline, deadline_leads).is_(None)]

    def newest_first(self) -> list[sa.ColumnElement[bool]]:
        """A partner's own flows, whatever their deadline."""
        return self._conditions(False, not self.few)


class FlowSearch(Repository):
    async def agents_page(self, where: FlowFilter, limit: int, after: ListPosition | None
                          ) -> tuple[list[ListedFlow], ListPosition | None]:
        """Flows of every partner: those with a deadline, nearest first, then the others; newest first
        among equals. One page and the position of its end when more follow.

        A page that takes flows of both stretches reads them in one statement, so in one snapshot: a flow
        that gains or loses its deadline meanwhile (a rescheduling offering its alternatives, a
        cancellation ending) is in exactly one of them, never missed and never listed twice. The first
        stretch is read alone first: when it fills the page (the usual case) that is all it costs."""
        stretches: list[sa.Select[Any]] = []
        async with self._reading() as conn:
            narrowed = await self._narrowed(conn, where)
            if after is None or after.deadline is not None:
                stretches.append(_stretch(0, [*narrowed.waiting(), *_nearest_first_after(after)], _NEAREST_FIRST, limit + 1))
                found = await _read(conn, stretches, limit + 1)
                if len(found) > limit or where.deadline_before is not None:
                    return _page(found, limit)
            still_after = after if after is not None and after.deadline is None else None
            stretches.append(_stretch(1, [*narrowed.waiting_for_nobody(), *_newest_first_after(still_after)],
                                      _NEWEST_FIRST, limit + 1))
            return _page(await _read(conn, stretches, limit + 1), limit)

    async def partners_page(self, partner_id: str, where: FlowFilter, limit: int, after: ListPosition | None
                            ) -> tuple[list[ListedFlow], ListPosition | None]:
        """The flows of one partner, newest first."""
        async with self._reading() as conn:
            narrowed = await self._narrowed(conn, replace(where, partner_id=partner_id))
            found = await self._rows(conn, [*narrowed.newest_first(), *_newest_first_after(after)], _NEWEST_FIRST, limit + 1)
        return _page(found, limit)

    async def partner_names(self, limit: int, after: tuple[str, str] | None) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
        """(partner id, name) of every partner a list can be narrowed to, by name then id; one page and
        the (name, id) of its end when more follow."""
        query = sa.select(partners.c.name, partners.c.partner_id).order_by(partners.c.name, partners.c.partner_id)
        if after is not None:
            query = query.where(sa.tuple_(partners.c.name, partners.c.partner_id) > sa.tuple_(*after))
        async with self._reading() as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
        page = [(row.partner_id, row.name) for row in rows[:limit]]
        return page, ((rows[limit - 1].name, rows[limit - 1].partner_id) if len(rows) > limit else None)

    async def _rows(self, conn: AsyncConnection, conditions: list[sa.ColumnElement[bool]],
                    order: tuple[sa.UnaryExpression[Any], ...], limit: int) -> list[Any]:
        page = sa.select(flows.c.code).where(*conditions).order_by(*order).limit(limit).subquery()
        return list((await conn.execute(_listed(page).order_by(*order))).all())

    async def _narrowed(self, conn: AsyncConnection, where: FlowFilter) -> _Narrowed:
        words, rare_word = await self._matching(conn, where.words)
        return _Narrowed(where, words, few=rare_word or where.product_id is not None or where.reservation_id is not None
                        or where.disruption_id is not None)

    async def _matching(self, conn: AsyncConnection, words: tuple[str, ...]) -> tuple[list[sa.ColumnElement[bool]], bool]:
        """A flow matches when each word begins one of its terms. The rarest word, if it is rare enough,
        names the candidate flows (gathered from the index: then True); every other word is checked per flow."""
        if not words:
            return [], False
        rarest, count = await self._rarest(conn, words, RARE_WORD if len(words) == 1 else RARE_AMONG_WORDS)
        rare = count is not None
        conditions: list[sa.ColumnElement[bool]] = []
        for word in words:
            if rare and word == rarest:
                conditions.append(flows.c.code.in_(sa.select(flow_search.c.code).where(_starting_with(word))))
            else:
                conditions.append(sa.exists().where(flow_search.c.code == flows.c.code, _starting_with(word)))
        return conditions, rare

    async def _rarest(self, conn: AsyncConnection, words: tuple[str, ...], bound: int) -> tuple[str, int | None]:
        """The word that begins the fewest terms, and how many if no more than ``bound`` (else None). Counted
        to growing limits, all words alike, so finding a rare word never costs counting a common one through."""
        limit = min(RARE_WORD, bound) + 1
        while True:
            counts = {word: await self._count_up_to(conn, word, limit) for word in words}
            rarest = min(words, key=counts.__getitem__)
            if counts[rarest] < limit:
                return rarest, counts[rarest]
            if limit > bound:
                return rarest, None
            limit = min(limit * 4, bound + 1)

    async def _count_up_to(self, conn: AsyncConnection, word: str, bound: int) -> int:
        """How many terms ``word`` begins, counted no further than ``bound``."""
        some = sa.select(flow_search.c.code).where(_starting_with(word)).limit(bound).subquery()
        return int((await conn.execute(sa.select(sa.func.count()).select_from(some))).scalar_one())


def _page(rows: list[Any], limit: int) -> tuple[list[ListedFlow], ListPosition | None]:
    page = rows[:limit]
    listed = [ListedFlow(**{**row._mapping, "travellers": traveller_names(row.travellers)}) for row in page]
    if len(rows) <= limit:
        return listed, None
    last = page[-1]
    return listed, ListPosition(last.deadline, last.created_at, last.code)
