"""Typed keys for what the application holds."""

from aiohttp import web
from temporalio.client import Client

from activities.ports import Supplier
from activities.webhook_guard import WebhookGuard
from config.settings import Settings
from store.facade import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
TEMPORAL = web.AppKey("temporal", Client)
# The gateway asks the supplier directly only for what needs no flow (change alternatives).
SUPPLIER = web.AppKey("supplier", Supplier)
# Checks a partner's webhook URL before it is stored (docs/triggers.md#where-triggers-may-go).
WEBHOOK_GUARD = web.AppKey("webhook_guard", WebhookGuard)
