"""disruptions: the flight index (which products are on a flight on a day), the disruptions received, and
the disruption a flow was started for

Revision ID: 0012
Revises: 0011

Flight products sold before this revision are indexed here, with the function the running code indexes
a sale with (store.flight_legs), so a disruption finds an old booking exactly as a new one.
"""

import sqlalchemy as sa
from alembic import op

from store.flight_legs import leg_rows

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table('flight_legs',
    sa.Column('carrier', sa.String(length=2), nullable=False),
    sa.Column('flight_number', sa.String(length=8), nullable=False),
    sa.Column('departure_date', sa.Date(), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.product_id'], ),
    sa.PrimaryKeyConstraint('carrier', 'flight_number', 'departure_date', 'product_id')
    )
    op.create_table('disruptions',
    sa.Column('disruption_id', sa.String(length=40), nullable=False),
    sa.Column('supplier_id', sa.String(length=40), nullable=False),
    sa.Column('change_id', sa.String(length=100), nullable=False),
    sa.Column('change', sa.JSON(), nullable=False),
    sa.Column('affected', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('launched_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('disruption_id'),
    sa.UniqueConstraint('supplier_id', 'change_id', name='uq_disruptions_supplier_change')
    )
    with op.batch_alter_table('disruptions', schema=None) as batch_op:
        batch_op.create_index('ix_disruptions_created', ['created_at', 'disruption_id'], unique=False)
        batch_op.create_index('ix_disruptions_unlaunched', ['launched_at', 'created_at'], unique=False)

    with op.batch_alter_table('flows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disruption_id', sa.String(length=40), nullable=True))
        batch_op.create_index('ix_flows_disruption_status', ['disruption_id', 'status'], unique=False)

    _index_existing_flights()


def _index_existing_flights() -> None:
    products = sa.table('products', sa.column('product_id', sa.String), sa.column('kind', sa.String),
                        sa.column('details', sa.JSON))
    flight_legs = sa.table('flight_legs', sa.column('carrier', sa.String), sa.column('flight_number', sa.String),
                           sa.column('departure_date', sa.Date), sa.column('product_id', sa.String))
    connection = op.get_bind()
    after = ''
    while True:
        rows = connection.execute(
            sa.select(products.c.product_id, products.c.details)
            .where(products.c.kind == 'flight', products.c.product_id > after)
            .order_by(products.c.product_id).limit(_BATCH)
        ).all()
        if not rows:
            return
        legs = leg_rows((row.product_id, row.details) for row in rows)
        if legs:
            connection.execute(flight_legs.insert(), legs)
        after = rows[-1].product_id


def downgrade() -> None:
    with op.batch_alter_table('flows', schema=None) as batch_op:
        batch_op.drop_index('ix_flows_disruption_status')
        batch_op.drop_column('disruption_id')

    with op.batch_alter_table('disruptions', schema=None) as batch_op:
        batch_op.drop_index('ix_disruptions_unlaunched')
        batch_op.drop_index('ix_disruptions_created')

    op.drop_table('disruptions')
    op.drop_table('flight_legs')
