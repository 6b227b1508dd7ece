"""keys: key ids, expiry and revocation; webhook secret rotation; outbox dispatch; idempotency claims

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
    # Keys issued before key ids existed are named after their hash (public: the hash of a random key).
    op.execute("UPDATE api_keys SET key_id = 'key_' || substr(key_hash, 1, 16) WHERE key_id IS NULL")
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.alter_column('key_id', existing_type=sa.String(length=40), nullable=False)
        batch_op.create_index(batch_op.f('ix_api_keys_key_id'), ['key_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_api_keys_principal_id'), ['principal_id'], unique=False)

    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_webhook_secret', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_events_dispatched_at'), ['dispatched_at'], unique=False)
    # Events that already finished delivering need no dispatch; pending ones are looked at once.
    op.execute("UPDATE events SET dispatched_at = created_at WHERE delivery_status <> 'pending'")

    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim', sa.String(length=32), nullable=True))
        batch_op.alter_column('status', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    # Claims still in progress have no answer to keep.
    op.execute("DELETE FROM idempotency_records WHERE status IS NULL")
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('status', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('claim')

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_dispatched_at'))
        batch_op.drop_column('dispatched_at')

    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.drop_column('previous_secret_expires_at')
        batch_op.drop_column('previous_webhook_secret')

    # Revoked and expired keys must not come back to life without their limits.
    op.execute("DELETE FROM api_keys WHERE revoked_at IS NOT NULL OR expires_at IS NOT NULL")
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_principal_id'))
        batch_op.drop_index(batch_op.f('ix_api_keys_key_id'))
        batch_op.drop_column('revoked_at')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('key_id')
