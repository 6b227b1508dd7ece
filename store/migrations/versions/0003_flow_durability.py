"""flow durability: the projection's version, the start intent a reconciler can finish, a quote used once

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('flows', schema=None) as batch_op:
        # Flows recorded before this revision have all made at least one transition.
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('start_input', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('opened_by', sa.String(length=80), nullable=True))
        batch_op.create_index('ix_flows_unstarted', ['version', 'created_at'], unique=False)

    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('used_by', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.drop_column('used_by')

    with op.batch_alter_table('flows', schema=None) as batch_op:
        batch_op.drop_index('ix_flows_unstarted')
        batch_op.drop_column('opened_by')
        batch_op.drop_column('start_input')
        batch_op.drop_column('version')
