"""console: the deadline a flow waits until, so the agents' queues list the most urgent first

Revision ID: 0004
Revises: 0003
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# What each waiting cancellation status waits until, in its flow info. Flows that were awaiting
# a quote before this revision never recorded a quote deadline: they stay null (listed last).
_DEADLINE_FIELDS = {"awaiting_partner_decision": "decision_deadline", "awaiting_agent_quote": "quote_deadline"}


def upgrade() -> None:
    with op.batch_alter_table('flows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deadline', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_flows_deadline'), ['deadline'], unique=False)

    flows = sa.table('flows', sa.column('code', sa.String), sa.column('kind', sa.String),
                     sa.column('status', sa.String), sa.column('info', sa.JSON),
                     sa.column('deadline', sa.DateTime(timezone=True)))
    connection = op.get_bind()
    waiting = connection.execute(
        sa.select(flows.c.code, flows.c.status, flows.c.info)
        .where(flows.c.kind == 'cancellation', flows.c.status.in_(list(_DEADLINE_FIELDS)))
    ).all()
    for row in waiting:
        value = (row.info or {}).get(_DEADLINE_FIELDS[row.status])
        if value:
            deadline = datetime.fromisoformat(value.replace('Z', '+00:00'))
            # Stored as the schema's UtcDateTime stores it: UTC, so SQLite's text compares in order.
            connection.execute(flows.update().where(flows.c.code == row.code)
                               .values(deadline=deadline.astimezone(timezone.utc)))


def downgrade() -> None:
    with op.batch_alter_table('flows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flows_deadline'))
        batch_op.drop_column('deadline')
