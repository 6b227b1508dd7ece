"""Which supplier adapter sits behind the supplier port, chosen by configuration."""

from __future__ import annotations

import importlib

from sqlalchemy.ext.asyncio import AsyncEngine

from activities.ports import Supplier
from config.settings import Settings
from store.sandbox_supplier import SandboxSupplier


def build_supplier(settings: Settings, engine: AsyncEngine) -> Supplier:
    """The sandbox supplier by default; ``AFTERSALES_SUPPLIER=package.module:factory`` plugs in a real one.

    The factory is called with ``(settings, engine)`` and returns an object of the Supplier port.
    """
    if settings.supplier == "sandbox":
        return SandboxSupplier(engine)
    module_name, _, attribute = settings.supplier.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    return factory(settings, engine)
