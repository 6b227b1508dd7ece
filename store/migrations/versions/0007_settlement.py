"""settlement: payments journal, refunds ledger and their counters

Revision ID: 0007
Revises: 0006

The counters' row starts at zero: the first refund created gets reference number 1, the first posted number 1.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refund_counters',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_reference', sa.Integer(), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('payments',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('effect_key', sa.String(length=120), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('reservation_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=True),
    sa.Column('flow_code', sa.String(length=20), nullable=True),
    sa.Column('refund_id', sa.String(length=40), nullable=True),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('vat_rate', sa.String(length=20), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('invoiced_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservations.reservation_id'], ),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('effect_key'),
    sa.UniqueConstraint('payment_id')
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_flow_code'), ['flow_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_partner_id'), ['partner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_reservation_id'), ['reservation_id'], unique=False)

    op.create_table('refunds',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('refund_id', sa.String(length=40), nullable=False),
    sa.Column('reference_number', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('effect_key', sa.String(length=120), nullable=True),
    sa.Column('reservation_id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=True),
    sa.Column('flow_code', sa.String(length=20), nullable=True),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('back_office_code', sa.String(length=100), nullable=True),
    sa.Column('rejection_reason', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('decided_by', sa.String(length=80), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rejected_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservations.reservation_id'], ),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('back_office_code'),
    sa.UniqueConstraint('effect_key'),
    sa.UniqueConstraint('number'),
    sa.UniqueConstraint('reference_number'),
    sa.UniqueConstraint('refund_id')
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_flow_code'), ['flow_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_partner_id'), ['partner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_reservation_id'), ['reservation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_state'), ['state'], unique=False)

    counters = sa.table('refund_counters', sa.column('id', sa.Integer), sa.column('last_reference', sa.Integer),
                        sa.column('last_number', sa.Integer))
    op.bulk_insert(counters, [{'id': 1, 'last_reference': 0, 'last_number': 0}])

def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_state'))
        batch_op.drop_index(batch_op.f('ix_refunds_reservation_id'))
        batch_op.drop_index(batch_op.f('ix_refunds_partner_id'))
        batch_op.drop_index(batch_op.f('ix_refunds_flow_code'))

    op.drop_table('refunds')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_reservation_id'))
        batch_op.drop_index(batch_op.f('ix_payments_partner_id'))
        batch_op.drop_index(batch_op.f('ix_payments_flow_code'))
        batch_op.drop_index(batch_op.f('ix_payments_created_at'))

    op.drop_table('payments')
    op.drop_table('refund_counters')
