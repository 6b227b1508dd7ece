"""tracing: the trace context an event was written in, so a delivery started later joins its flow's trace

Revision ID: 0011
Revises: 0010

A W3C traceparent (55 characters); NULL for events written outside any trace and for every event
written before this revision (their deliveries start traces of their own).
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traceparent', sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('traceparent')
