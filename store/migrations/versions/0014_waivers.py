"""waivers: a quote says whether it is involuntary, the waiver it carries, the waiver the partner asked for
and the penalty the policy gave (docs/flows.md#waivers)

Revision ID: 0014
Revises: 0013 (main's feed; the travellers branch's migration, not yet on main, is chained by the integrator)

Quotes given before this revision are voluntary, with no waiver.
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('involuntary', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('waiver', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('waiver_request', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('policy_penalty', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.drop_column('policy_penalty')
        batch_op.drop_column('waiver_request')
        batch_op.drop_column('waiver')
        batch_op.drop_column('involuntary')
