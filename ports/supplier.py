"""The supplier port (airline, hotel bed bank, …) and the factory that picks its adapter by configuration.

``AFTERSALES_SUPPLIER=sandbox`` (the default) loads ``sandbox.airline:build``;
``AFTERSALES_SUPPLIER=package.module:factory`` plugs in a real one. The factory is called with
``(settings, engine)`` and returns an object of the :class:`Supplier` port. The adapter is loaded by
name, so no production module imports the sandbox.
"""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from typing import Protocol, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from domain.change_pricing import ChangeAlternative, ChangeSearch
from domain.products import ProductSpec, Segment
from domain.special_request_flow import SpecialRequestAsk, SupplierAnswer

SANDBOX_FACTORY = "sandbox.airline:build"


class SupplierRefused(Exception):
    """The supplier answered and said no (e.g. the product is already used): retrying will not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Supplier(Protocol):
    async def cancel_product(self, product_id: str, flow_code: str, traveller_ids: list[str] | None = None) -> None:
        """Cancel the product, or only ``traveller_ids`` of it (docs/api.md#partial-cancellation: the
        product stays while any traveller remains); cancelling again with the same ``flow_code``
        succeeds without effect. Raises :class:`SupplierRefused` when the supplier refuses."""
        ...

    async def reschedule_product(self, product_id: str, segments: list[Segment], flow_code: str) -> None:
        """Move the flight product to ``segments``; asking again with the same ``flow_code`` succeeds
        without effect. Raises :class:`SupplierRefused` when the supplier refuses."""
        ...

    async def change_alternatives(self, product_id: str, search: ChangeSearch, now: datetime) -> list[ChangeAlternative]:
        """Itineraries the product could change to on the searched dates, priced (``domain.change_pricing``).
        Raises ``DateIncompatible`` / ``SearchInvalid`` for dates that cannot give one."""
        ...

    async def payment_methods(self, product_id: str) -> list[str]:
        """How a partner may pay an agent's checkout for this product."""
        ...

    async def apply_change(self, product_id: str, itinerary: ProductSpec | None, flow_code: str) -> None:
        """Give the product ``itinerary`` (None: nothing to move); asking again with the same
        ``flow_code`` succeeds without effect. Raises :class:`SupplierRefused` when the supplier refuses."""
        ...

    async def submit_special_request(self, ask: SpecialRequestAsk) -> timedelta:
        """Hand a special request to the airline; how long until it is worth asking for the answer."""
        ...

    async def answer_special_request(self, ask: SpecialRequestAsk) -> SupplierAnswer:
        """The airline's answer to a special request: confirmed or declined (with its reason), or
        pending with when to ask again."""
        ...


def build_supplier(settings: Settings, engine: AsyncEngine) -> Supplier:
    target = SANDBOX_FACTORY if settings.supplier == "sandbox" else settings.supplier
    module_name, _, attribute = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    return cast(Supplier, factory(settings, engine))
