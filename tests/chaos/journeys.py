"""What partners, agents and clients do while the stack is being killed: every kind of flow, each
step sent with its own Idempotency-Key and retried, as a careful client would, until it gets an
answer that is not a server error nor a refusal for now only (409 with Retry-After).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp

from tests.chaos.stack import Stack

ANSWER_S = 30.0  # one HTTP attempt
STEP_S = 240.0  # one step, all its retries included
BACKOFF_S = 0.5


class GaveUp(Exception):
    pass


@dataclass
class Client:
    """A caller with its key; ``call`` retries a request, with the same Idempotency-Key, until it gets
    a final answer: not a 5xx, not "still running", not a refusal for now only (409 with Retry-After)."""

    stack: Stack
    http: aiohttp.ClientSession
    key: str
    retries: Counter[str] = field(default_factory=Counter)

    async def call(self, method: str, path: str, idempotency_key: str | None = None,
                   body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        async with asyncio.timeout(STEP_S):
            while True:
                try:
                    async with self.http.request(method, self.stack.base_url + path, json=body, headers=headers,
                                                 timeout=aiohttp.ClientTimeout(total=ANSWER_S)) as response:
                        answer = await response.json(content_type=None)
                        # "Still running" (its first attempt may have died with a gateway): ask again later.
                        in_use = response.status == 409 and answer.get("code") == "idempotency_key_in_use"
                        # Refused for now only (the flow is not at that step yet): ask again when it says.
                        not_yet = response.status == 409 and "Retry-After" in response.headers
                        if response.status < 500 and not in_use and not not_yet:
                            return response.status, answer
                        outcome = "409 in use" if in_use else "409 not yet" if not_yet else str(response.status)
                        wait_s = float(response.headers.get("Retry-After", BACKOFF_S)) if not_yet else BACKOFF_S
                except (aiohttp.ClientError, TimeoutError) as error:
                    outcome, wait_s = type(error).__name__, BACKOFF_S
                self.retries[outcome] += 1
                await self._after_failure(wait_s)

    async def _after_failure(self, wait_s: float = BACKOFF_S) -> None:
        """Wait until the stack is up again; when it is (a part still warming up, a flow still
        starting), until the stack next changes, at most ``wait_s`` (a short back-off)."""
        if not self.stack.up.is_set():
            await self.stack.up.wait()
            return
        async with self.stack.changed:
            try:
                await asyncio.wait_for(self.stack.changed.wait(), wait_s)
            except TimeoutError:
                pass


def _expect(status: int, body: dict[str, Any], *wanted: int) -> dict[str, Any]:
    if status not in wanted:
        raise GaveUp(f"unexpected {status}: {body}")
    return body


def flight(days_ahead: int = 30, *, changeable: bool = False) -> dict[str, Any]:
    departure = (datetime.now(timezone.utc) + timedelta(days=days_ahead)).replace(microsecond=0)
    return {
        "kind": "flight", "carrier": "ZZ",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": departure.isoformat(),
                      "arrival": (departure + timedelta(hours=2)).isoformat(), "flight_number": "ZZ101"}],
        "price": {"amount": "240.00", "currency": "EUR"}, "vat_rate": "0.081",
        "cancellation_policy": {"mode": "automatic", "tiers": [{"hours_before_start": 168, "penalty_percent": "50"}]},
        "change_policy": {"changeable": changeable, "change_fee": {"amount": "30.00", "currency": "EUR"}},
        "special_request_options": [{"code": "WCHR", "name": "Wheelchair", "price": None}],
    }


def hotel() -> dict[str, Any]:
    check_in = (datetime.now(timezone.utc) + timedelta(days=30)).date()
    return {
        "kind": "hotel", "hotel": "Hotel Lutetia", "check_in": check_in.isoformat(),
        "check_out": (check_in + timedelta(days=2)).isoformat(), "price": {"amount": "600.00", "currency": "EUR"},
        "vat_rate": "0.10", "cancellation_policy": {"mode": "manual"}, "change_policy": {"changeable": False},
    }


@dataclass
class Journey:
    """One flow driven to its end by its actors; ``code`` and ``expected`` say what it must become.
    ``more``: the other flows it started on the way (the cancellation whose credit pays its change).
    ``decisions``: each partner's decision sent (a manual cancellation) and its final answer's status,
    in order: what the audit holds the flow's outcome to."""

    name: str
    kind: str
    expected: str
    code: str | None = None
    more: list[str] = field(default_factory=list)
    decisions: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Actors:
    partner: Client
    agent: Client
    started: Callable[[], None]  # called once a journey's flow has been asked for

    async def book(self, journey: str, product: dict[str, Any], key: str = "book") -> dict[str, Any]:
        status, body = await self.partner.call("POST", "/v1/sandbox/reservations", f"{journey}-{key}", {
            "travellers": [{"traveller_id": "T1", "name": "Ada Lovelace"}], "products": [product]})
        return _expect(status, body, 201)

    async def quote(self, journey: str, product_id: str) -> str:
        status, body = await self.partner.call("POST", f"/v1/products/{product_id}/cancellation-quotes",
                                               f"{journey}-quote", {})
        return str(_expect(status, body, 201)["quote_id"])

    async def cancel(self, journey: str, product_id: str, quote_id: str, refund_to: str = "original_payment") -> dict[str, Any]:
        status, body = await self.partner.call("POST", f"/v1/products/{product_id}/cancellations",
                                               f"{journey}-cancel", {"quote_id": quote_id, "refund_to": refund_to})
        self.started()
        return _expect(status, body, 200, 202)

    async def change_context(self, journey: str, product: dict[str, Any], product_id: str) -> dict[str, Any]:
        """Pre-book a change of the product to the next day's first alternative: the context."""
        day = product["segments"][0]["departure"][:10]
        status, body = await self.partner.call("POST", f"/v1/products/{product_id}/change-alternatives",
                                               f"{journey}-search", {"departure_date": day})
        itinerary_id = _expect(status, body, 200)["items"][0]["itinerary_id"]
        status, body = await self.partner.call("POST", "/v1/change-contexts", f"{journey}-context",
                                               {"itinerary_id": itinerary_id})
        return _expect(status, body, 201)


async def _until_accepted(who: Client, method: str, path: str, key: str, body: dict[str, Any],
                          answers: list[int] | None = None) -> None:
    """Send an input to a running flow until it takes it: a final 409 means the flow is not at that
    step (still starting after a crash, or its previous step not recorded yet). ``answers``: where
    each final answer's status goes."""
    async with asyncio.timeout(STEP_S):
        for attempt in itertools.count():
            # A final 409 is that request's answer (and replayed for its key): try again as a new request.
            status, answer = await who.call(method, path, f"{key}-{attempt}", body)
            if answers is not None:
                answers.append(status)
            if status in (200, 202):
                return
            _expect(status, answer, 409)
            await who._after_failure()


async def automatic_cancellation(actors: Actors, journey: Journey) -> None:
    reservation = await actors.book(journey.name, flight())
    product_id = reservation["products"][0]["product_id"]
    quote_id = await actors.quote(journey.name, product_id)
    journey.code = (await actors.cancel(journey.name, product_id, quote_id))["code"]


async def manual_cancellation(actors: Actors, journey: Journey) -> None:
    reservation = await actors.book(journey.name, hotel())
    product_id = reservation["products"][0]["product_id"]
    quote_id = await actors.quote(journey.name, product_id)
    journey.code = code = (await actors.cancel(journey.name, product_id, quote_id))["code"]
    # The agent quotes once the flow awaits it (its workflow may still be starting after a crash).
    await _until_accepted(actors.agent, "POST", f"/v1/agent/cancellations/{code}/quote", f"{journey.name}-agent-quote", {
        "penalty": {"amount": "60.00", "currency": "EUR"}, "refund": {"amount": "540.00", "currency": "EUR"},
        "note": "hotel fee"})
    # The partner decides once told of the quote: a quote answered 202 may not be recorded yet.
    decision = "accept" if journey.expected == "cancelled" else "reject"
    answers: list[int] = []
    try:
        await _until_accepted(actors.partner, "PATCH", f"/v1/cancellations/{code}", f"{journey.name}-decide",
                              {"decision": decision}, answers)
    finally:
        journey.decisions += [(decision, status) for status in answers]


async def change(actors: Actors, journey: Journey) -> None:
    product = flight(changeable=True)
    reservation = await actors.book(journey.name, product)
    context = await actors.change_context(journey.name, product, reservation["products"][0]["product_id"])
    actors.started()
    journey.code = context["code"]
    status, body = await actors.partner.call("POST", f"/v1/change-contexts/{context['context_id']}/book",
                                             f"{journey.name}-book-context", {})
    _expect(status, body, 200, 202)


async def change_paid_with_a_credit(actors: Actors, journey: Journey) -> None:
    """A cancellation refunded into a credit, then a change of another booking paid with that credit."""
    first = await actors.book(journey.name, flight(), key="book-cancelled")
    product_id = first["products"][0]["product_id"]
    cancelled = await actors.cancel(journey.name, product_id, await actors.quote(journey.name, product_id), "credit")
    journey.more.append(cancelled["code"])
    # The credit is there once the cancellation is recorded (its answer may have been a 202).
    async with asyncio.timeout(STEP_S):
        while True:
            status, page = await actors.partner.call("GET", f"/v1/credits?flow_code={cancelled['code']}")
            if _expect(status, page, 200)["items"]:
                break
            await actors.partner._after_failure()
    credit_id = page["items"][0]["credit_id"]
    product = flight(changeable=True)
    second = await actors.book(journey.name, product, key="book-changed")
    context = await actors.change_context(journey.name, product, second["products"][0]["product_id"])
    journey.code = context["code"]
    status, body = await actors.partner.call("POST", f"/v1/change-contexts/{context['context_id']}/book",
                                             f"{journey.name}-book-context", {"credit_id": credit_id})
    _expect(status, body, 200, 202)


async def special_request(actors: Actors, journey: Journey) -> None:
    reservation = await actors.book(journey.name, flight())
    product_id = reservation["products"][0]["product_id"]
    status, body = await actors.partner.call("POST", f"/v1/products/{product_id}/special-requests",
                                             f"{journey.name}-request", {"code": "WCHR", "traveller_id": "T1"})
    actors.started()
    journey.code = _expect(status, body, 202)["request_id"]


async def rescheduling(actors: Actors, journey: Journey) -> None:
    reservation = await actors.book(journey.name, flight())
    product_id = reservation["products"][0]["product_id"]
    status, body = await actors.partner.call("POST", "/v1/sandbox/rescheduling/mock", f"{journey.name}-mock",
                                             {"product_id": product_id, "kind": "time_change", "delay_minutes": 60})
    actors.started()
    _expect(status, body, 202)
    status, view = await actors.partner.call("GET", f"/v1/reservations/{reservation['reservation_id']}")
    [flow] = [f for f in _expect(status, view, 200)["flows"] if f["kind"] == "rescheduling"]
    journey.code = code = flow["code"]
    # The partner accepts the proposal once the flow offers it (it holds the product by then).
    await _until_accepted(actors.partner, "POST", f"/v1/reschedulings/{code}/accept", f"{journey.name}-accept",
                          {"alternative_id": "proposed"})


JOURNEYS: list[tuple[str, str, Callable[[Actors, Journey], Awaitable[None]]]] = [
    ("cancellation", "cancelled", automatic_cancellation),
    ("cancellation", "cancelled", manual_cancellation),
    ("cancellation", "rejected", manual_cancellation),
    ("change", "modified", change),
    ("change", "modified", change_paid_with_a_credit),
    ("special_request", "confirmed", special_request),
    ("rescheduling", "accepted", rescheduling),
]


def plan(flows: int, run: str) -> list[tuple[Journey, Callable[[Actors, Journey], Awaitable[None]]]]:
    """``flows`` journeys cycling through every kind, named uniquely for this run."""
    kinds = itertools.cycle(JOURNEYS)
    return [(Journey(f"{run}-{i:04d}", kind, expected), drive)
            for i, (kind, expected, drive) in zip(range(flows), kinds, strict=False)]
