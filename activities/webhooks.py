"""Trigger delivery: one signed POST of a stored event to the partner's webhook per attempt.

Retrying, backoff and giving up belong to the ``TriggerDeliveryWorkflow``'s retry policy;
this activity only reports each attempt and raises when it was not a 2xx. Before each attempt
the webhook's address is checked again (``ports.webhook_guard``): a refused one is a failed
attempt, and no request is made.

``TriggerDeliveryWorkflow`` calls these methods by reference; the names they are registered under
are what histories and scheduled activities carry, so they never change.
"""

from __future__ import annotations

import time
from typing import Literal

import aiohttp
from opentelemetry.trace import SpanKind, Status, StatusCode
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from yarl import URL

from config.telemetry import EVENT_ID, TRACER, outgoing_headers
from domain.signature import SIGNATURE_HEADER, sign
from ports.recording import DeliveryTarget, EventOutbox
from ports.webhook_guard import Destination, WebhookGuard, WebhookRefused

DELIVERY_TIMEOUT = aiohttp.ClientTimeout(total=10)
WEBHOOK_FAILED = "webhook_failed"

DeliveryOutcome = Literal["delivered", "no_webhook"]


class TriggerActivities:
    def __init__(self, outbox: EventOutbox, guard: WebhookGuard, http: aiohttp.ClientSession | None = None) -> None:
        """``http`` is the worker's long-lived session; without one each attempt opens its own."""
        self._outbox = outbox
        self._guard = guard
        self._http = http

    @activity.defn(name="deliver_event")
    async def deliver_event(self, event_id: str) -> DeliveryOutcome:
        target = await self._outbox.delivery_target(event_id)
        if target is None:
            return "no_webhook"
        try:
            destination = await self._guard.destination(target.url)
        except WebhookRefused as refused:
            detail = f"refused: {refused}"
            await self._outbox.record_attempt(event_id, delivered=False, detail=detail)
            raise _failed(f"webhook {detail}") from None
        try:
            # The POST's own span (docs/operations.md#traces), sent on as the delivery's traceparent.
            with TRACER.start_as_current_span("webhook POST", kind=SpanKind.CLIENT, attributes={
                "http.request.method": "POST", "server.address": destination.host, EVENT_ID: event_id,
            }) as span:
                if self._http is not None:
                    status = await self._post(self._http, target, destination)
                else:
                    async with aiohttp.ClientSession() as http:
                        status = await self._post(http, target, destination)
                span.set_attribute("http.response.status_code", status)
                if not 200 <= status < 300:
                    span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            detail = f"{type(exc).__name__}: {exc}"[:500]
            await self._outbox.record_attempt(event_id, delivered=False, detail=detail)
            raise _failed(f"webhook unreachable: {detail}") from exc
        if 200 <= status < 300:
            await self._outbox.record_attempt(event_id, delivered=True, detail=f"HTTP {status}")
            return "delivered"
        await self._outbox.record_attempt(event_id, delivered=False, detail=f"HTTP {status}")
        raise _failed(f"webhook answered HTTP {status}")

    @activity.defn(name="mark_event_failed")
    async def mark_failed(self, event_id: str) -> None:
        await self._outbox.mark_failed(event_id)

    @staticmethod
    async def _post(http: aiohttp.ClientSession, target: DeliveryTarget, destination: Destination) -> int:
        also = (target.previous_secret,) if target.previous_secret else ()
        url = URL(destination.url)
        headers = {
            "Content-Type": "application/json",
            # A fresh timestamp per attempt: receivers reject stale signatures.
            SIGNATURE_HEADER: sign(target.secret, int(time.time()), target.body, *also),
            # The connection goes to the vetted address; the partner's server still sees its own name.
            "Host": url.raw_authority.rpartition("@")[2],
            # The partner may follow the delivery into its own trace (docs/triggers.md).
            **outgoing_headers(),
        }
        # Redirects are not followed: a 3xx is not a delivery, and following it would
        # let a webhook URL bounce our signed request to another host.
        async with http.post(
            url.with_host(destination.address), data=target.body, headers=headers, timeout=DELIVERY_TIMEOUT,
            allow_redirects=False, server_hostname=destination.host if url.scheme == "https" else None,
        ) as response:
            return response.status


def _failed(message: str) -> ApplicationError:
    """Retryable; BENIGN because a partner's webhook being down is not our fault and every
    attempt is already in the outbox: an error log per retry would only bury real errors."""
    return ApplicationError(message, type=WEBHOOK_FAILED, category=ApplicationErrorCategory.BENIGN)
