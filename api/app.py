"""The gateway's application factory: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.supplier_factory import build_supplier
from api import (
    admin,
    cancellations,
    changes,
    checkouts,
    events,
    health,
    payments,
    refund_procedure_endpoints,
    refunds,
    reschedulings,
    reservations,
    sandbox_endpoints,
    special_requests,
)
from api.context import SETTINGS, STORE, SUPPLIER, TEMPORAL
from api.endpoints import Resource
from api.flow_start import FLOW_STARTER, FlowStarter
from api.middlewares import authenticate, idempotency, problems, request_log
from api.openapi import build_openapi
from config.settings import Settings
from store.facade import Store, open_store

MAX_BODY = 1024 * 1024
VERSION = "1.0.0"


def resources(settings: Settings) -> list[Resource]:
    found = [health.resource, admin.resource, reservations.resource, cancellations.resource, events.resource,
             reschedulings.resource, changes.resource, checkouts.resource, special_requests.resource,
             payments.resource, refunds.resource, refund_procedure_endpoints.resource]
    if settings.sandbox:
        found.append(sandbox_endpoints.resource)
    return found


async def connect_temporal(settings: Settings) -> Client:
    # Lazy: the gateway starts (and /healthz tells the truth) even while Temporal is still coming up.
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        lazy=True,
    )


def create_app(settings: Settings, *, store: Store | None = None, temporal: Client | None = None) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY, middlewares=[request_log, problems, authenticate, idempotency]
    )
    app[SETTINGS] = settings

    async def dependencies(app: web.Application) -> AsyncIterator[None]:
        owned = store is None
        app[STORE] = store or await open_store(settings.database_url)
        app[TEMPORAL] = temporal or await connect_temporal(settings)
        app[SUPPLIER] = build_supplier(settings, app[STORE].engine)
        app[FLOW_STARTER] = FlowStarter(app[STORE], app[TEMPORAL], settings)
        yield
        if owned:
            await app[STORE].close()

    app.cleanup_ctx.append(dependencies)
    declared = resources(settings)
    for resource in declared:
        resource.add_to(app)
    health.add_documents(app, build_openapi([e for r in declared for e in r.endpoints], VERSION))
    return app
