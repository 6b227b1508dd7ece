"""Typed keys for what the application holds."""

from aiohttp import web
from temporalio.client import Client

from config.settings import Settings
from ports.supplier import Supplier
from ports.webhook_guard import WebhookGuard
from store.repositories import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
TEMPORAL = web.AppKey("temporal", Client)
# The gateway asks the supplier directly only for what needs no flow (change alternatives).
SUPPLIER = web.AppKey("supplier", Supplier)
# Checks a partner's webhook URL before it is stored (docs/triggers.md#where-triggers-may-go).
WEBHOOK_GUARD = web.AppKey("webhook_guard", WebhookGuard)
