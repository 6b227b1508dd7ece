"""changes: change offers, and the change flow that last changed a product

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('change_offers',
    sa.Column('itinerary_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('base_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('itinerary', sa.JSON(), nullable=False),
    sa.Column('fare_difference', sa.JSON(), nullable=False),
    sa.Column('change_fee', sa.JSON(), nullable=False),
    sa.Column('total_due', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('itinerary_id')
    )
    with op.batch_alter_table('change_offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_offers_product_id'), ['product_id'], unique=False)

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('changed_by', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_column('changed_by')

    with op.batch_alter_table('change_offers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_offers_product_id'))

    op.drop_table('change_offers')
