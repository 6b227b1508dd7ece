"""flows: the record a flow is parked on, refused by the store for good (docs/operations.md#a-refused-record)

Revision ID: 0010
Revises: 0009

Two nullable columns (the store's reason, since when) and a partial index over the few rows that
have them: adding them rewrites no row on either database.
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('flows', sa.Column('record_refused', sa.String(length=500), nullable=True))
    op.add_column('flows', sa.Column('record_refused_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_flows_record_refused', 'flows', ['record_refused_at', 'code'], unique=False,
                    postgresql_where=sa.text('record_refused_at IS NOT NULL'),
                    sqlite_where=sa.text('record_refused_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_flows_record_refused', table_name='flows',
                  postgresql_where=sa.text('record_refused_at IS NOT NULL'),
                  sqlite_where=sa.text('record_refused_at IS NOT NULL'))
    # ALTER TABLE … DROP COLUMN on both (SQLite since 3.35): no copy of the table, whose other partial
    # index a copy would have to rebuild.
    op.drop_column('flows', 'record_refused_at')
    op.drop_column('flows', 'record_refused')
