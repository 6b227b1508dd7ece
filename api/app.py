"""The gateway's application factory: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api import (
    admin,
    cancellations,
    changes,
    checkouts,
    credits,
    disruptions,
    events,
    flow_search,
    health,
    payments,
    refund_procedure,
    refunds,
    reschedulings,
    reservations,
    sandbox_controls,
    special_requests,
    supplier_intake,
)
from api.app_keys import DEPS
from api.console import add_console
from api.endpoints import Resource
from api.http_server import handler_args
from api.metrics import add_metrics
from api.middlewares import authenticate, idempotency, problems, read_body, request_log, security_headers
from api.openapi import build_openapi
from api.rate_limits import RATE_LIMITER, RateLimiter, rate_limit_headers
from api.tracing import observe_requests
from config.settings import Settings
from config.telemetry import temporal_interceptors
from ports.webhook_guard import Resolver, system_resolver
from services.bootstrap import bootstrap
from services.disruptions import reconcile_starts
from services.flow_start import RECONCILE_EVERY, ReconcilerPass
from services.sweeps import sweep_forever
from store.repositories import Store, open_store

MAX_BODY = 1024 * 1024
VERSION = "1.0.0"


def resources(settings: Settings) -> list[Resource]:
    found = [health.resource, admin.resource, supplier_intake.admin_resource, reservations.resource,
             cancellations.resource, events.resource, reschedulings.resource, changes.resource, checkouts.resource,
             special_requests.resource, supplier_intake.resource, payments.resource, refunds.resource,
             refund_procedure.resource, credits.resource, flow_search.resource, disruptions.resource]
    if settings.sandbox:
        found.append(sandbox_controls.resource)
    return found


async def connect_temporal(settings: Settings) -> Client:
    # Lazy: the gateway starts (and /healthz tells the truth) even while Temporal is still coming up.
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=temporal_interceptors(settings),
        lazy=True,
    )


def create_app(
    settings: Settings, *, store: Store | None = None, temporal: Client | None = None,
    webhook_resolver: Resolver = system_resolver, rate_limiter: RateLimiter | None = None,
) -> web.Application:
    """``webhook_resolver`` is the seam tests use to say what a webhook's host resolves to,
    ``rate_limiter`` the one they use to move the clock of request budgets (api/rate_limits.py)."""
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[observe_requests, request_log, problems, authenticate, read_body, idempotency],
        handler_args=handler_args(settings),
    )
    app[RATE_LIMITER] = rate_limiter or RateLimiter(settings)
    app.on_response_prepare.append(security_headers)
    app.on_response_prepare.append(rate_limit_headers)
    add_metrics(app)

    async def dependencies(app: web.Application) -> AsyncIterator[None]:
        opened = store or await open_store(settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_pool_overflow)
        deps = app[DEPS] = bootstrap(settings, opened, temporal or await connect_temporal(settings), webhook_resolver)
        # Every gateway finishes the flow starts (and disruption fan-outs) a crash interrupted
        # (docs/flows.md#how-a-flow-starts, docs/rescheduling.md#disruptions).
        # A round finds the same unstarted flows until their workflows record something, so it never
        # sweeps again at once.
        stop = asyncio.Event()
        reconciler = asyncio.create_task(sweep_forever(
            partial(reconcile_starts, deps, ReconcilerPass()), name="flow_start_reconciler", every=RECONCILE_EVERY, stop=stop, full_batch=None,
        ))
        yield
        # Cut short, not waited for: a start it leaves half done is the next round's (here or in another gateway).
        stop.set()
        reconciler.cancel()
        await asyncio.gather(reconciler, return_exceptions=True)
        if store is None:
            await opened.close()

    app.cleanup_ctx.append(dependencies)
    declared = resources(settings)
    for resource in declared:
        resource.add_to(app)
    health.add_documents(app, build_openapi([e for r in declared for e in r.endpoints], VERSION))
    add_console(app)
    return app
