"""credits: refunds given as vouchers, their movements, and the credit a journal entry takes from

Revision ID: 0009
Revises: 0008

Amounts are integers in the currency's minor units; the check constraints keep each credit's books
balanced (amount = redeemed + expired + remaining, nothing negative) whatever writes them.
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credits',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('credit_id', sa.String(length=40), nullable=False),
    sa.Column('effect_key', sa.String(length=120), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('reservation_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=True),
    sa.Column('flow_code', sa.String(length=20), nullable=False),
    sa.Column('traveller_ids', sa.JSON(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('redeemed_minor', sa.BigInteger(), nullable=False),
    sa.Column('expired_minor', sa.BigInteger(), nullable=False),
    sa.Column('remaining_minor', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name='ck_credits_amount_positive'),
    sa.CheckConstraint('remaining_minor >= 0 AND redeemed_minor >= 0 AND expired_minor >= 0',
                       name='ck_credits_not_negative'),
    sa.CheckConstraint('amount_minor = redeemed_minor + expired_minor + remaining_minor', name='ck_credits_balanced'),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservations.reservation_id'], ),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('credit_id'),
    sa.UniqueConstraint('effect_key')
    )
    with op.batch_alter_table('credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credits_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_credits_flow_code'), ['flow_code'], unique=False)
        batch_op.create_index('ix_credits_partner_currency', ['partner_id', 'currency'], unique=False)
        batch_op.create_index(batch_op.f('ix_credits_reservation_id'), ['reservation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credits_state'), ['state'], unique=False)

    op.create_table('credit_movements',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('effect_key', sa.String(length=120), nullable=False),
    sa.Column('credit_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('flow_code', sa.String(length=20), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name='ck_credit_movements_amount_positive'),
    sa.ForeignKeyConstraint(['credit_id'], ['credits.credit_id'], ),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('effect_key')
    )
    with op.batch_alter_table('credit_movements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_movements_credit_id'), ['credit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_movements_flow_code'), ['flow_code'], unique=False)

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credit_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('credit_id')

    with op.batch_alter_table('credit_movements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_movements_flow_code'))
        batch_op.drop_index(batch_op.f('ix_credit_movements_credit_id'))
    op.drop_table('credit_movements')

    with op.batch_alter_table('credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credits_state'))
        batch_op.drop_index(batch_op.f('ix_credits_reservation_id'))
        batch_op.drop_index('ix_credits_partner_currency')
        batch_op.drop_index(batch_op.f('ix_credits_flow_code'))
        batch_op.drop_index(batch_op.f('ix_credits_expires_at'))
    op.drop_table('credits')
