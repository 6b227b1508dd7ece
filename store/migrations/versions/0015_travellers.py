"""travellers: who each product covers and what each paid, travellers cancelled one by one

Revision ID: 0015
Revises: 0014

- ``products.cancelled_travellers`` (JSON, NULL: none): traveller id → the flow that cancelled it.
- ``quotes.traveller_ids`` and ``refunds.traveller_ids`` (JSON, NULL: the whole product).
- Backfill: every product stored before this revision names ``traveller_ids`` (every traveller of its
  reservation) and ``fares`` (the price split equally, the remainder's minor units to the first
  travellers in order), and ``cancellation_policy.partial`` (true, false for hotels), as a product
  sold now without them would. A product cancelled before stays
  cancelled: its travellers show ``cancelled`` because the product is.

The split is done here on the stored price string (it always carries exactly the currency's minor
units), so the migration does not depend on code that may change after it.
"""

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_BATCH = 500


def _split(price: dict[str, str], traveller_ids: list[str]) -> list[dict[str, Any]]:
    amount = price["amount"]
    digits = len(amount.partition(".")[2])
    units = int(Decimal(amount).scaleb(digits))
    base, remainder = divmod(units, len(traveller_ids))
    fares = []
    for index, traveller_id in enumerate(traveller_ids):
        share = Decimal(base + (1 if index < remainder else 0)).scaleb(-digits)
        fares.append({"traveller_id": traveller_id,
                      "amount": {"amount": f"{share:.{digits}f}", "currency": price["currency"]}})
    return fares


def upgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_travellers', sa.JSON(), nullable=True))
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traveller_ids', sa.JSON(), nullable=True))
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traveller_ids', sa.JSON(), nullable=True))

    conn = op.get_bind()
    products = sa.table('products', sa.column('product_id', sa.String), sa.column('reservation_id', sa.String),
                        sa.column('details', sa.JSON))
    reservations = sa.table('reservations', sa.column('reservation_id', sa.String), sa.column('travellers', sa.JSON))
    after = ""
    while True:
        rows = conn.execute(
            sa.select(products.c.product_id, products.c.details, reservations.c.travellers)
            .join(reservations, reservations.c.reservation_id == products.c.reservation_id)
            .where(products.c.product_id > after).order_by(products.c.product_id).limit(_BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            details = dict(row.details)
            policy = dict(details.get("cancellation_policy") or {})
            if details.get("fares") is None or policy.get("partial") is None:
                traveller_ids = details.get("traveller_ids") or [t["traveller_id"] for t in row.travellers]
                details["traveller_ids"] = traveller_ids
                details["fares"] = details.get("fares") or _split(details["price"], traveller_ids)
                if policy.get("partial") is None:
                    policy["partial"] = details.get("kind") != "hotel"
                    details["cancellation_policy"] = policy
                conn.execute(products.update().where(products.c.product_id == row.product_id).values(details=details))
        after = rows[-1].product_id


def downgrade() -> None:
    # The backfilled traveller_ids and fares stay in the details: they are the defaults, and the
    # products read the same without them.
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('traveller_ids')
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.drop_column('traveller_ids')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_column('cancelled_travellers')
