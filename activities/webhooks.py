"""Trigger delivery: one signed POST of a stored event to the partner's webhook per attempt.

Retrying, backoff and giving up belong to the ``TriggerDeliveryWorkflow``'s retry policy;
this activity only reports each attempt and raises when it was not a 2xx. Before each attempt
the webhook's address is checked again (``ports.webhook_guard``): a refused one is a failed
attempt, and no request is made.

One partner's receiver cannot slow the others (docs/triggers.md#one-receiver-cannot-slow-the-others):
at most ``per_receiver`` deliveries are in flight to one webhook URL in a worker. A delivery that
finds its receiver's slots taken does not wait for one (a waiting activity would hold one of the
worker's slots, which every flow shares): it makes no request, records no attempt, and is retried
at its turn in the receiver's line (:class:`ReceiverSlots`).

``TriggerDeliveryWorkflow`` calls these methods by reference; the names they are registered under
are what histories and scheduled activities carry, so they never change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
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

# The whole attempt, answer included, within 10 s; the TCP connection within 3 s, and a connection from
# the worker's shared pool (connect) within 5 s, so an exhausted pool fails an attempt instead of hanging it.
DELIVERY_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5, sock_connect=3)
WEBHOOK_FAILED = "webhook_failed"
RECEIVER_BUSY = "webhook_receiver_busy"
PER_RECEIVER = 4  # Settings.webhook_receiver_concurrency's default
MAX_TURN_S = 3600.0  # as the delivery's longest backoff (workflows.trigger_delivery.MAX_RETRY_INTERVAL)
# What an attempt to a receiver is guessed to take before one has been timed.
FIRST_GUESS_S = 0.2


class ReceiverBusy(Exception):
    def __init__(self, come_back_in_s: float) -> None:
        super().__init__(come_back_in_s)
        self.come_back_in_s = come_back_in_s


class ReceiverSlots:
    """At most ``per_receiver`` deliveries in flight to one webhook URL, and a line for the others.

    A delivery that finds the slots taken is told when to come back: one slot's share of an attempt
    (the receiver's attempts, timed, averaged) after the last one told. So a burst of a thousand
    events to a receiver answering in 50 ms comes back spread over some 12 s, as fast as its slots
    turn over, instead of all at once and then again with growing backoff; and a receiver that hangs
    10 s sees its waiting deliveries return at 4 every 10 s (an attempt still running counts for as long
    as it has run), not all of them every second.

    One event loop owns it, and nothing awaits between a check and its count, so no lock is needed.
    """

    def __init__(self, per_receiver: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_receiver = per_receiver
        self._clock = clock
        self._in_flight: dict[str, list[float]] = {}  # per receiver: when each attempt in flight started
        self._attempt_s: dict[str, float] = {}  # per receiver: its attempts' duration, a moving average
        self._last_turn: dict[str, float] = {}  # per receiver: when the last delivery turned away comes back

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one of ``url``'s slots for the block; :class:`ReceiverBusy` at once when none is free."""
        in_flight = self._in_flight.setdefault(url, [])
        if len(in_flight) >= self.per_receiver:
            raise ReceiverBusy(self._turn_of_next(url, in_flight))
        started = self._clock()
        in_flight.append(started)
        try:
            yield
        finally:
            took = self._clock() - started
            self._attempt_s[url] = 0.8 * self._attempt_s.get(url, took) + 0.2 * took
            in_flight.remove(started)
            if not in_flight:
                del self._in_flight[url]

    def _turn_of_next(self, url: str, in_flight: list[float]) -> float:
        """Seconds until the delivery turned away now should come back: its place in the receiver's line.
        An attempt still running counts for as long as it has run: a receiver that starts hanging
        stretches its line at once, before any of its slow attempts has ended."""
        now = self._clock()
        attempt_s = max(self._attempt_s.get(url, FIRST_GUESS_S), now - min(in_flight))
        turn = max(now, self._last_turn.get(url, now)) + attempt_s / self.per_receiver
        self._last_turn[url] = turn
        return turn - now


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
        except ReceiverBusy as busy:
            raise ApplicationError(
                f"{self._slots.per_receiver} deliveries in flight to this webhook already: no request made",
                type=RECEIVER_BUSY, category=ApplicationErrorCategory.BENIGN,
                # Its turn in the receiver's line, not the retry policy's growing backoff.
                next_retry_delay=timedelta(seconds=min(busy.come_back_in_s, MAX_TURN_S)),
            ) from None

    async def _attempt(self, event_id: str, target: DeliveryTarget) -> DeliveryOutcome:
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
