"""The database schema (SQLAlchemy Core). Migrations in ``store/migrations`` create exactly this."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which forgets the offset) as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store times with an offset")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


partners = sa.Table(
    "partners",
    metadata,
    sa.Column("partner_id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    # docs/api.md#put-v1partnerwebhook: the URL as stored (normalised) is at most 2000 characters.
    sa.Column("webhook_url", sa.String(2000)),
    sa.Column("webhook_secret", sa.String(200), nullable=False),
    # The secret a rotation replaced: it still signs (a second v1=) until previous_secret_expires_at.
    sa.Column("previous_webhook_secret", sa.String(200)),
    sa.Column("previous_secret_expires_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("agent_id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    # SHA-256 of the key: keys are 32 random bytes, so a fast hash is enough and lookups stay indexed.
    sa.Column("key_hash", sa.String(64), primary_key=True),
    # The key's public name (never the key): what the admin lists and revokes.
    sa.Column("key_id", sa.String(40), nullable=False, unique=True, index=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("principal_id", sa.String(40), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # A rotated key works until expires_at; a revoked key stops at revoked_at (docs/api.md#authentication-and-roles).
    sa.Column("expires_at", UtcDateTime),
    sa.Column("revoked_at", UtcDateTime),
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("reservation_id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.partner_id"), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("travellers", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("product_id", sa.String(40), primary_key=True),
    sa.Column("reservation_id", sa.String(40), sa.ForeignKey("reservations.reservation_id"), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("start_at", UtcDateTime, nullable=False),
    sa.Column("end_at", UtcDateTime, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    # The flow that cancelled it: makes the supplier's cancel idempotent by flow code.
    sa.Column("cancelled_by", sa.String(20)),
    # The change flow that last gave it a new itinerary: makes the supplier's change idempotent by flow code.
    sa.Column("changed_by", sa.String(20)),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # The travellers cancelled one by one (docs/api.md#partial-cancellation): traveller id → the flow
    # that cancelled it; NULL: none. The whole product cancelled cancels every traveller.
    sa.Column("cancelled_travellers", sa.JSON),
)

flows = sa.Table(
    "flows",
    metadata,
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("product_id", sa.String(40), nullable=False, index=True),
    sa.Column("reservation_id", sa.String(40), nullable=False, index=True),
    sa.Column("partner_id", sa.String(40), nullable=False),  # first of ix_flows_partner_created
    sa.Column("status", sa.String(40), nullable=False),  # first of ix_flows_status_created
    sa.Column("info", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # How many transitions the projection holds (FlowInfo.version): an older write never
    # overwrites a newer one. 0 until the workflow records its first transition.
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    # The workflow input, kept until the workflow is known to run, so that a start interrupted by
    # a crash is finished by the gateways' reconciler (docs/flows.md#how-a-flow-starts).
    sa.Column("start_input", sa.JSON),
    # Who asked for it ("partner:ptn_…", "agent:agt_…"): only they may find it again by retrying.
    sa.Column("opened_by", sa.String(80)),
    sa.Index("ix_flows_unstarted", "version", "created_at"),
    # When the flow stops waiting for a person (FlowInfo.waiting_until): the agents' queues are
    # ordered by it, nearest first (ix_flows_deadline_created). Null when it waits for nobody.
    sa.Column("deadline", UtcDateTime),
    # Set while the flow is parked on a transition the store refused for good (the store's reason,
    # and since when), cleared by the next transition recorded (docs/operations.md#a-refused-record).
    sa.Column("record_refused", sa.String(500)),
    sa.Column("record_refused_at", UtcDateTime),
    # The disruption whose fan-out started it (docs/rescheduling.md#disruptions); null for any other flow.
    sa.Column("disruption_id", sa.String(40)),
)
# A disruption's progress counts its flows by status; agents list a disruption's flows.
sa.Index("ix_flows_disruption_status", flows.c.disruption_id, flows.c.status)

# The agents' list orders flows by deadline (nearest first), then newest; a partner's list by newest;
# either narrowed to a partner or a status walks that one's index newest first (store.flow_search).
# PostgreSQL walks the flows without a deadline newest first only by the partial index (it does not
# take ``deadline IS NULL`` as fixing the first column of the other one); SQLite walks either.
sa.Index("ix_flows_deadline_created", flows.c.deadline, flows.c.created_at, flows.c.code)
sa.Index("ix_flows_undated_created", flows.c.created_at, flows.c.code,
         postgresql_where=flows.c.deadline.is_(None), sqlite_where=flows.c.deadline.is_(None))
sa.Index("ix_flows_partner_created", flows.c.partner_id, flows.c.created_at, flows.c.code)
sa.Index("ix_flows_status_created", flows.c.status, flows.c.created_at, flows.c.code)
# The few flows parked on a refused record, oldest first: the admin's list and the gateway's gauge
# read this small index instead of every flow.
sa.Index("ix_flows_record_refused", flows.c.record_refused_at, flows.c.code,
         postgresql_where=flows.c.record_refused_at.is_not(None), sqlite_where=flows.c.record_refused_at.is_not(None))

# A search term compares byte by byte (PostgreSQL's "C" collation, SQLite's default), so the range
# [word, next word) holds exactly the terms that start with the word, whatever the server's locale.
SEARCH_TERM_LENGTH = 64
SearchTerm = sa.String(SEARCH_TERM_LENGTH).with_variant(postgresql.VARCHAR(SEARCH_TERM_LENGTH, collation="C"), "postgresql")

# The words a flow is found by (store.flow_search): one row per normalised term of its code, reservation,
# product, partner name and travellers' names, written in the transaction that indexes the flow. The
# primary key answers "the flows with a term starting with …" as one index range.
flow_search = sa.Table(
    "flow_search",
    metadata,
    sa.Column("term", SearchTerm, primary_key=True),
    sa.Column("code", sa.String(20), primary_key=True),
    # "Does this flow have a term starting with …", asked flow by flow along the list's order.
    sa.Index("ix_flow_search_code_term", "code", "term"),
)

# The flight index (docs/rescheduling.md#disruptions): one row per flight a flight product has a segment on,
# (carrier of the product, flight number as ``ZZ101``, the segment's local departure date), written in the
# transaction that sells it. The primary key answers "the products on this flight", in product id order.
flight_legs = sa.Table(
    "flight_legs",
    metadata,
    sa.Column("carrier", sa.String(2), primary_key=True),
    sa.Column("flight_number", sa.String(8), primary_key=True),
    sa.Column("departure_date", sa.Date, primary_key=True),
    sa.Column("product_id", sa.String(40), sa.ForeignKey("products.product_id"), primary_key=True),
)

# A supplier's push naming a flight (docs/rescheduling.md#disruptions): one row per (supplier, change id),
# so a repeated push finds its disruption. ``launched_at``: when its fan-out workflow was started (null: the
# gateway's reconciler starts it).
disruptions = sa.Table(
    "disruptions",
    metadata,
    sa.Column("disruption_id", sa.String(40), primary_key=True),
    sa.Column("supplier_id", sa.String(40), nullable=False),
    sa.Column("change_id", sa.String(100), nullable=False),
    sa.Column("change", sa.JSON, nullable=False),
    sa.Column("affected", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("launched_at", UtcDateTime),
    sa.UniqueConstraint("supplier_id", "change_id", name="uq_disruptions_supplier_change"),
    sa.Index("ix_disruptions_created", "created_at", "disruption_id"),
    sa.Index("ix_disruptions_unlaunched", "launched_at", "created_at"),
)

# One active mutating flow per product: the primary key is the lock.
product_locks = sa.Table(
    "product_locks",
    metadata,
    sa.Column("product_id", sa.String(40), primary_key=True),
    sa.Column("flow_code", sa.String(20), nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
)

quotes = sa.Table(
    "quotes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("quote_id", sa.String(40), nullable=False, unique=True),
    sa.Column("product_id", sa.String(40), nullable=False, index=True),
    sa.Column("partner_id", sa.String(40), nullable=False),
    sa.Column("resolution", sa.String(20), nullable=False),
    sa.Column("paid", sa.JSON, nullable=False),
    sa.Column("penalty", sa.JSON),
    sa.Column("refund", sa.JSON),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    # The travellers the quote cancels (a partial cancellation); NULL for quotes given before they were named.
    sa.Column("traveller_ids", sa.JSON),
    # The flow the quote started: a quote is used once.
    sa.Column("used_by", sa.String(20)),
    # Involuntary (the supplier changed the product) with its waiver, the waiver the partner asked
    # for, and the penalty the policy's tiers gave (docs/flows.md#waivers).
    sa.Column("involuntary", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("waiver", sa.JSON),
    sa.Column("waiver_request", sa.JSON),
    sa.Column("policy_penalty", sa.JSON),
)

events = sa.Table(
    "events",
    metadata,
    # seq orders the pull feed; id is what partners see and deduplicate on.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(60), nullable=False, unique=True),
    sa.Column("partner_id", sa.String(40), nullable=False),  # first of ix_events_partner_feed
    sa.Column("type", sa.String(60), nullable=False),
    sa.Column("flow_code", sa.String(20), index=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("delivery_status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(500)),
    sa.Column("delivered_at", UtcDateTime),
    # When a delivery workflow was started for it (by its flow, or by the outbox dispatcher for an
    # event stored without one); NULL rows are all the dispatcher ever looks at.
    sa.Column("dispatched_at", UtcDateTime, index=True),
    # The W3C traceparent of the span that wrote it (docs/operations.md#traces): a delivery the outbox
    # dispatcher starts later continues that trace. NULL when it was written outside any trace.
    sa.Column("traceparent", sa.String(55)),
    # The transaction that stored it (docs/triggers.md#the-feeds-order): on PostgreSQL the migration
    # makes its default ``pg_current_xact_id()`` (as a bigint), so every writer fills it without naming
    # it; 0 on SQLite, whose writers commit one at a time in seq order, and for events stored before
    # revision 0013. The feed serves events in (xid, seq) order, and only those whose transaction is
    # over for every reader (store.outbox.Outbox.feed).
    sa.Column("xid", sa.BigInteger, nullable=False, server_default="0"),
)
# The pull feed: one partner's events in (xid, seq) order.
sa.Index("ix_events_partner_feed", events.c.partner_id, events.c.xid, events.c.seq)

idempotency_records = sa.Table(
    "idempotency_records",
    metadata,
    sa.Column("principal", sa.String(60), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    # NULL while the first request runs (the key is claimed); the stored answer once it is done.
    sa.Column("status", sa.Integer),
    sa.Column("body", sa.Text),
    # Who holds the claim: only that request may store its answer (a takeover after the lease changes it).
    sa.Column("claim", sa.String(32)),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
)

# Change alternatives as offered (docs/api.md#changes), so an ``itinerary_id`` can be pre-booked later.
change_offers = sa.Table(
    "change_offers",
    metadata,
    sa.Column("itinerary_id", sa.String(40), primary_key=True),
    sa.Column("product_id", sa.String(40), nullable=False, index=True),
    sa.Column("partner_id", sa.String(40), nullable=False),
    # domain.changes.fingerprint of the product's details the offer was priced against.
    sa.Column("base_fingerprint", sa.String(64), nullable=False),
    sa.Column("itinerary", sa.JSON, nullable=False),
    sa.Column("fare_difference", sa.JSON, nullable=False),
    sa.Column("change_fee", sa.JSON, nullable=False),
    sa.Column("total_due", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

# Airlines and other suppliers that push schedule changes (docs/api.md#supplier-pushes). Their API
# keys live in ``api_keys`` with role ``supplier``; the signing secret verifies each push's
# signature, so it is kept as a partner's webhook secret is (it must be read back to verify).
suppliers = sa.Table(
    "suppliers",
    metadata,
    sa.Column("supplier_id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("carriers", sa.JSON, nullable=False),
    sa.Column("signing_secret", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

# The payments journal (docs/settlement.md#the-payments-journal): one row per money effect, signed from
# the partner's side. Amounts are exact decimal strings at the currency's minor units, summed in
# Python with Decimal (SQLite has no exact decimal type).
payments = sa.Table(
    "payments",
    metadata,
    # seq orders the journal (oldest first) and its cursor; payment_id is what partners see.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.String(40), nullable=False, unique=True),
    # The one money effect the row books (domain.journal): a second write of it hits this key.
    sa.Column("effect_key", sa.String(120), nullable=False, unique=True),
    sa.Column("partner_id", sa.String(40), nullable=False, index=True),
    sa.Column(
        "reservation_id", sa.String(40), sa.ForeignKey("reservations.reservation_id"), nullable=False, index=True
    ),
    sa.Column("product_id", sa.String(40)),
    sa.Column("flow_code", sa.String(20), index=True),
    sa.Column("refund_id", sa.String(40)),
    sa.Column("category", sa.String(20), nullable=False),
    sa.Column("amount", sa.String(40), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("vat_rate", sa.String(20)),
    # The credit a credit_redemption takes from (docs/settlement.md#credits).
    sa.Column("credit_id", sa.String(40)),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    sa.Column("invoiced_at", UtcDateTime),
)

# The refunds ledger (docs/settlement.md#the-refunds-ledger).
refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("refund_id", sa.String(40), nullable=False, unique=True),
    sa.Column("reference_number", sa.Integer, nullable=False, unique=True),
    # Given on posting, from the ``refund_number`` counter: gapless among posted refunds.
    sa.Column("number", sa.Integer, unique=True),
    # ``flow:<code>`` for a flow's own refund, ``deposit:<product>`` for a deposit given back: once each.
    sa.Column("effect_key", sa.String(120), unique=True),
    sa.Column(
        "reservation_id", sa.String(40), sa.ForeignKey("reservations.reservation_id"), nullable=False, index=True
    ),
    sa.Column("partner_id", sa.String(40), nullable=False, index=True),
    sa.Column("product_id", sa.String(40)),
    sa.Column("flow_code", sa.String(20), index=True),
    sa.Column("category", sa.String(20), nullable=False),
    sa.Column("amount", sa.String(40), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("notes", sa.Text, nullable=False),
    sa.Column("back_office_code", sa.String(100), unique=True),
    sa.Column("rejection_reason", sa.String(500)),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("decided_by", sa.String(80)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("posted_at", UtcDateTime),
    sa.Column("rejected_at", UtcDateTime),
    # The travellers a flow's refund is for (a partial cancellation); NULL: the whole product, or not a flow's.
    sa.Column("traveller_ids", sa.JSON),
)

# The refunds ledger's two counters, in one row (``id`` = 1, seeded by migration 0007), updated in the
# transaction that uses them: a rolled-back transaction gives its numbers back, so the sequences have
# no gap (a PostgreSQL sequence would keep them). One row, so a posting that draws both takes one lock.
refund_counters = sa.Table(
    "refund_counters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_reference", sa.Integer, nullable=False),
    sa.Column("last_number", sa.Integer, nullable=False),
)

# Credits (docs/settlement.md#credits): refunds given as vouchers. Amounts are integers in the currency's
# minor units, so the database itself compares and adds them exactly: a redemption's UPDATE is
# conditional on what remains, and the constraints keep every credit's books balanced whatever writes them.
credits = sa.Table(
    "credits",
    metadata,
    # seq orders the list (GET /v1/credits) and its cursor; credit_id is what partners see.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("credit_id", sa.String(40), nullable=False, unique=True),
    # ``credit:<flow code>``: one credit per flow, however often its transition is recorded.
    sa.Column("effect_key", sa.String(120), nullable=False, unique=True),
    sa.Column("partner_id", sa.String(40), nullable=False),  # first of ix_credits_partner_currency
    sa.Column(
        "reservation_id", sa.String(40), sa.ForeignKey("reservations.reservation_id"), nullable=False, index=True
    ),
    sa.Column("product_id", sa.String(40)),
    sa.Column("flow_code", sa.String(20), nullable=False, index=True),
    sa.Column("traveller_ids", sa.JSON, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("redeemed_minor", sa.BigInteger, nullable=False),
    sa.Column("expired_minor", sa.BigInteger, nullable=False),
    sa.Column("remaining_minor", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("notes", sa.Text, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.CheckConstraint("amount_minor > 0", name="ck_credits_amount_positive"),
    sa.CheckConstraint("remaining_minor >= 0 AND redeemed_minor >= 0 AND expired_minor >= 0",
                       name="ck_credits_not_negative"),
    sa.CheckConstraint("amount_minor = redeemed_minor + expired_minor + remaining_minor", name="ck_credits_balanced"),
)
# Finance's totals per partner and currency (store.credit_records.CreditRecords.balances).
sa.Index("ix_credits_partner_currency", credits.c.partner_id, credits.c.currency)

# Every change of a credit's value, each once by its key (domain.credit_ledger.movement_key).
credit_movements = sa.Table(
    "credit_movements",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("effect_key", sa.String(120), nullable=False, unique=True),
    sa.Column("credit_id", sa.String(40), sa.ForeignKey("credits.credit_id"), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("flow_code", sa.String(20), index=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.CheckConstraint("amount_minor > 0", name="ck_credit_movements_amount_positive"),
)
