"""Trigger delivery: one signed POST of a stored event to the partner's webhook per attempt.

Retrying, backoff and giving up belong to the ``TriggerDeliveryWorkflow``'s retry policy;
this activity only reports each attempt and raises when it was not a 2xx. Before each attempt
the webhook's address is checked again (``ports.webhook_guard``): a refused one is a failed
attempt, and no request is made.

One partner's receiver cannot slow the others (docs/triggers.md#one-receiver-cannot-slow-the-others):
at most ``per_receiver`` deliveries are in flight to one webhook URL in a worker. A delivery that
finds its receiver's slots taken does not wait for one (a waiting activity would hold one of the
worker's slots, which every flow shares): it makes no request, records no attempt, and is retried
by its workflow's backoff like a failed one.

``TriggerDeliveryWorkflow`` calls these methods by reference; the names they are registered under
are what histories and scheduled activities carry, so they never change.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import aiohttp
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from yarl import URL

from domain.signature import SIGNATURE_HEADER, sign
from ports.recording import DeliveryTarget, EventOutbox
from ports.webhook_guard import Destination, WebhookGuard, WebhookRefused

# The whole attempt, answer included, within 10 s; the TCP connection within 3 s, and a connection from
# the worker's shared pool (connect) within 5 s, so an exhausted pool fails an attempt instead of hanging it.
DELIVERY_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5, sock_connect=3)
WEBHOOK_FAILED = "webhook_failed"
RECEIVER_BUSY = "webhook_receiver_busy"
PER_RECEIVER = 4  # Settings.webhook_receiver_concurrency's default


class ReceiverBusy(Exception):
    pass


class ReceiverSlots:
    """At most ``per_receiver`` deliveries in flight to one webhook URL. One event loop owns it, and
    a slot is taken with no await between the check and the count, so no lock is needed."""

    def __init__(self, per_receiver: int) -> None:
        self.per_receiver = per_receiver
        self._in_flight: Counter[str] = Counter()

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one of ``url``'s slots for the block; :class:`ReceiverBusy` at once when none is free."""
        if self._in_flight[url] >= self.per_receiver:
            raise ReceiverBusy(url)
        self._in_flight[url] += 1
        try:
            yield
        finally:
            self._in_flight[url] -= 1
            if not self._in_flight[url]:
                del self._in_flight[url]

DeliveryOutcome = Literal["delivered", "no_webhook"]


class TriggerActivities:
    def __init__(self, outbox: EventOutbox, guard: WebhookGuard, http: aiohttp.ClientSession | None = None,
                 per_receiver: int = PER_RECEIVER) -> None:
        """``http`` is the worker's long-lived session; without one each attempt opens its own."""
        self._outbox = outbox
        self._guard = guard
        self._http = http
        self._slots = ReceiverSlots(per_receiver)

    @activity.defn(name="deliver_event")
    async def deliver_event(self, event_id: str) -> DeliveryOutcome:
        target = await self._outbox.delivery_target(event_id)
        if target is None:
            return "no_webhook"
        try:
            with self._slots.slot(target.url):
                return await self._attempt(event_id, target)
        except ReceiverBusy:
            raise ApplicationError(
                f"{self._slots.per_receiver} deliveries in flight to this webhook already: no request made",
                type=RECEIVER_BUSY, category=ApplicationErrorCategory.BENIGN,
            ) from None

    async def _attempt(self, event_id: str, target: DeliveryTarget) -> DeliveryOutcome:
        try:
            destination = await self._guard.destination(target.url)
        except WebhookRefused as refused:
            detail = f"refused: {refused}"
            await self._outbox.record_attempt(event_id, delivered=False, detail=detail)
            raise _failed(f"webhook {detail}") from None
        try:
            if self._http is not None:
                status = await self._post(self._http, target, destination)
            else:
                async with aiohttp.ClientSession() as http:
                    status = await self._post(http, target, destination)
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
