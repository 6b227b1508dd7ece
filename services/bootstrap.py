"""What every service is given, built once per process (the gateway's ``cleanup_ctx``; tests build their own)."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client

from config.settings import Settings
from ports.supplier import Supplier, build_supplier
from ports.webhook_guard import Resolver, WebhookGuard, system_resolver
from store.repositories import Store


@dataclass(frozen=True)
class Deps:
    store: Store
    temporal: Client
    settings: Settings
    # Asked directly only for what needs no flow (change alternatives, a checkout's payment methods).
    supplier: Supplier
    # Checks a partner's webhook URL before it is stored (docs/triggers.md#where-triggers-may-go).
    webhook_guard: WebhookGuard


def bootstrap(settings: Settings, store: Store, temporal: Client, webhook_resolver: Resolver = system_resolver) -> Deps:
    """``webhook_resolver`` is the seam tests use to say what a webhook's host resolves to."""
    return Deps(
        store=store,
        temporal=temporal,
        settings=settings,
        supplier=build_supplier(settings, store.engine),
        webhook_guard=WebhookGuard.for_settings(settings, webhook_resolver),
    )
