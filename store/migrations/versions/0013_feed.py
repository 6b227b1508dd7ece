"""feed order: each event's inserting transaction, so the pull feed never skips one committed late

Revision ID: 0013
Revises: 0012

On PostgreSQL an event's ``seq`` is drawn when it is inserted, not when its transaction commits: a
transaction that waits (on the refund counters' lock, say) commits its events after later ones, and
a reader that had moved past them would never see them. ``xid`` records the inserting transaction
(``pg_current_xact_id()``, 64 bits, never wrapping); the feed serves only events of transactions
older than every one still in flight, in (xid, seq) order (docs/triggers.md#the-feeds-order).
Events stored before this revision keep 0: they come first, in seq order, as they always did.
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# A bigint, not xid8: it compares and binds as any integer does, and xid8 values stay below 2**63.
INSERTING_TRANSACTION = "(pg_current_xact_id()::text::bigint)"


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('xid', sa.BigInteger(), server_default='0', nullable=False))
        # Its first column: the feed's index answers whatever the partner's own did.
        batch_op.drop_index('ix_events_partner_id')
        batch_op.create_index('ix_events_partner_feed', ['partner_id', 'xid', 'seq'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        # Existing rows keep 0; every event inserted from now on records its transaction.
        op.alter_column('events', 'xid', server_default=sa.text(INSERTING_TRANSACTION))


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_partner_feed')
        batch_op.create_index('ix_events_partner_id', ['partner_id'], unique=False)
        batch_op.drop_column('xid')
