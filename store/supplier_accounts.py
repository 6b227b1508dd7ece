"""Suppliers that push schedule changes (docs/api.md#supplier-pushes): the carriers bound to each,
its API key (role ``supplier``, stored hashed like every key) and its signing secret."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from domain.codes import SUPPLIER_ID
from store.accounts import key_row, new_api_key
from store.db import Repository
from store.schema import api_keys, suppliers

SUPPLIER_ROLE = "supplier"


@dataclass(frozen=True)
class SupplierAccount:
    supplier_id: str
    name: str
    carriers: tuple[str, ...]
    signing_secret: str

    def sells(self, carrier: str) -> bool:
        return carrier in self.carriers


@dataclass(frozen=True)
class NewSupplier:
    """A supplier as created: the API key exists in clear only here, once."""

    account: SupplierAccount
    api_key: str


class SupplierAccounts(Repository):
    async def create(self, name: str, carriers: list[str]) -> NewSupplier:
        account = SupplierAccount(
            supplier_id=SUPPLIER_ID.secure(),
            name=name,
            carriers=tuple(dict.fromkeys(carriers)),
            signing_secret="spsec_" + secrets.token_urlsafe(32),
        )
        api_key = new_api_key()
        now = datetime.now(timezone.utc)
        async with self._writing() as conn:
            await conn.execute(suppliers.insert().values(
                supplier_id=account.supplier_id, name=name, carriers=list(account.carriers),
                signing_secret=account.signing_secret, created_at=now,
            ))
            await conn.execute(api_keys.insert().values(**key_row(api_key, SUPPLIER_ROLE, account.supplier_id, now)))
        return NewSupplier(account, api_key)

    async def find(self, supplier_id: str) -> SupplierAccount | None:
        async with self._reading() as conn:
            row = (await conn.execute(sa.select(suppliers).where(suppliers.c.supplier_id == supplier_id))).first()
        if row is None:
            return None
        return SupplierAccount(row.supplier_id, row.name, tuple(row.carriers), row.signing_secret)
