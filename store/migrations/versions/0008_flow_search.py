"""flow search: the words each flow is found by, and the indexes of the agents' and partners' lists

Revision ID: 0008
Revises: 0007

Flows indexed before this revision get their terms here, computed by the function the running code
writes them with (store.flow_search), so an old flow is found exactly as a new one is.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from store.flow_search import flow_terms, traveller_names

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table('flow_search',
    sa.Column('term', sa.String(length=64).with_variant(postgresql.VARCHAR(length=64, collation='C'), 'postgresql'),
              nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('term', 'code')
    )
    with op.batch_alter_table('flow_search', schema=None) as batch_op:
        batch_op.create_index('ix_flow_search_code_term', ['code', 'term'], unique=False)

    with op.batch_alter_table('flows', schema=None) as batch_op:
        # Each is the first column of a wider index now.
        batch_op.drop_index('ix_flows_deadline')
        batch_op.drop_index('ix_flows_partner_id')
        batch_op.drop_index('ix_flows_status')
        batch_op.create_index('ix_flows_deadline_created', ['deadline', 'created_at', 'code'], unique=False)
        batch_op.create_index('ix_flows_undated_created', ['created_at', 'code'], unique=False,
                              postgresql_where=sa.text('deadline IS NULL'), sqlite_where=sa.text('deadline IS NULL'))
        batch_op.create_index('ix_flows_partner_created', ['partner_id', 'created_at', 'code'], unique=False)
        batch_op.create_index('ix_flows_status_created', ['status', 'created_at', 'code'], unique=False)

    _index_existing_flows()


def _index_existing_flows() -> None:
    flows = sa.table('flows', sa.column('code', sa.String), sa.column('reservation_id', sa.String),
                     sa.column('product_id', sa.String), sa.column('partner_id', sa.String))
    partners = sa.table('partners', sa.column('partner_id', sa.String), sa.column('name', sa.String))
    reservations = sa.table('reservations', sa.column('reservation_id', sa.String), sa.column('travellers', sa.JSON))
    flow_search = sa.table('flow_search', sa.column('term', sa.String), sa.column('code', sa.String))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(flows.c.code, flows.c.reservation_id, flows.c.product_id, partners.c.name, reservations.c.travellers)
        .select_from(flows.outerjoin(partners, partners.c.partner_id == flows.c.partner_id)
                     .outerjoin(reservations, reservations.c.reservation_id == flows.c.reservation_id))
        .order_by(flows.c.code)
    )
    batch: list[dict[str, str]] = []
    for row in rows:
        terms = flow_terms(row.code, row.reservation_id, row.product_id, row.name, traveller_names(row.travellers))
        batch += [{"term": term, "code": row.code} for term in sorted(terms)]
        if len(batch) >= _BATCH:
            connection.execute(flow_search.insert(), batch)
            batch = []
    if batch:
        connection.execute(flow_search.insert(), batch)


def downgrade() -> None:
    with op.batch_alter_table('flows', schema=None) as batch_op:
        batch_op.drop_index('ix_flows_status_created')
        batch_op.drop_index('ix_flows_partner_created')
        batch_op.drop_index('ix_flows_undated_created')
        batch_op.drop_index('ix_flows_deadline_created')
        batch_op.create_index('ix_flows_deadline', ['deadline'], unique=False)
        batch_op.create_index('ix_flows_partner_id', ['partner_id'], unique=False)
        batch_op.create_index('ix_flows_status', ['status'], unique=False)

    with op.batch_alter_table('flow_search', schema=None) as batch_op:
        batch_op.drop_index('ix_flow_search_code_term')

    op.drop_table('flow_search')
