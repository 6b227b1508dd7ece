"""Which supplier adapter sits behind the supplier port, chosen by configuration.

``AFTERSALES_SUPPLIER=sandbox`` (the default) loads ``sandbox.supplier:build``;
``AFTERSALES_SUPPLIER=package.module:factory`` plugs in a real one. The factory is called with
``(settings, engine)`` and returns an object of the ``activities.ports.Supplier`` port. The
adapter is loaded by name, so no production module imports the sandbox.
"""

from __future__ import annotations

import importlib
from typing import cast

from sqlalchemy.ext.asyncio import AsyncEngine

from activities.ports import Supplier
from config.settings import Settings

SANDBOX_FACTORY = "sandbox.supplier:build"


def build_supplier(settings: Settings, engine: AsyncEngine) -> Supplier:
    target = SANDBOX_FACTORY if settings.supplier == "sandbox" else settings.supplier
    module_name, _, attribute = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    return cast(Supplier, factory(settings, engine))
