"""flows: the deadline of reschedulings awaiting the partner's choice and of changes awaiting a booking, so the
agents' list orders them with the cancellations and operators see flows past their deadline

Revision ID: 0016
Revises: 0015
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

# What each waiting status waits until, in its flow info (as ReschedulingInfo and ChangeInfo.waiting_until say).
_DEADLINE_FIELDS = {
    ('rescheduling', 'awaiting_partner_action'): 'decision_deadline',
    ('change', 'awaiting_booking'): 'expires_at',
    ('change', 'checkout_issued'): 'expires_at',
    ('change', 'checkout_prebooked'): 'expires_at',
}


def upgrade() -> None:
    flows = sa.table('flows', sa.column('code', sa.String), sa.column('kind', sa.String),
                     sa.column('status', sa.String), sa.column('info', sa.JSON),
                     sa.column('deadline', sa.DateTime(timezone=True)))
    connection = op.get_bind()
    waiting = connection.execute(
        sa.select(flows.c.code, flows.c.kind, flows.c.status, flows.c.info)
        .where(flows.c.kind.in_(['rescheduling', 'change']), flows.c.deadline.is_(None),
               flows.c.status.in_(sorted({status for _, status in _DEADLINE_FIELDS})))
    ).all()
    for row in waiting:
        field = _DEADLINE_FIELDS.get((row.kind, row.status))
        value = (row.info or {}).get(field) if field else None
        if value:
            deadline = datetime.fromisoformat(value.replace('Z', '+00:00'))
            # Stored as the schema's UtcDateTime stores it: UTC, so SQLite's text compares in order.
            connection.execute(flows.update().where(flows.c.code == row.code)
                               .values(deadline=deadline.astimezone(timezone.utc)))


def downgrade() -> None:
    flows = sa.table('flows', sa.column('kind', sa.String), sa.column('deadline', sa.DateTime(timezone=True)))
    op.get_bind().execute(flows.update().where(flows.c.kind.in_(['rescheduling', 'change'])).values(deadline=None))
