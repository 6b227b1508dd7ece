"""Request budgets (docs/api.md#rate-limits): a token bucket per account, per client address for
requests without a valid key, and per address for the monitoring endpoints.

``authenticate`` (api/middlewares.py) spends from them as soon as it knows who is calling and before
any database work, so a flood is refused at the cost of a dictionary lookup. The buckets live in
this process: behind a load balancer each gateway enforces its own (docs/operations.md#rate-limits).

A bucket of our own rather than a library's: it is a few lines, O(1) per request with two floats
per partition, and it answers exactly what the headers need (what is left, when it is whole again,
when the next request may go), against a clock the tests can move.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from api.problems import Problem
from config.settings import RateLimit, Settings
from store.accounts import Principal

# Paths a load balancer and Prometheus poll: a budget of their own per address, so a flood of the
# API never fails a health check, and a flood of health checks never reaches the database unchecked.
MONITORING_PATHS = frozenset({"/healthz", "/metrics"})
# Partitions kept at most; the least recently used are forgotten first (a forgotten one starts whole
# again, which only matters to a client that spreads over this many addresses).
MAX_PARTITIONS = 100_000
# Refusals held back at once at the most: beyond it a 429 is answered at once, so a client that opens
# connection after connection cannot make the gateway hold an unbounded number of them.
MAX_PAUSED = 2_000


@dataclass(frozen=True)
class Verdict:
    """What one request's spending says, and the headers that tell the client."""

    policy: str  # "account", "address" or "monitoring": which budget paid
    limit: RateLimit
    allowed: bool
    remaining: int  # requests that may go at once now
    seconds: int  # refused: until the next may go; allowed: until the budget is whole again

    def headers(self) -> dict[str, str]:
        """The IETF draft's fields (draft-ietf-httpapi-ratelimit-headers-11), and Retry-After on a refusal."""
        found = {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit.rate};w=1;aftersales-burst={self.limit.burst}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.seconds}',
        }
        if not self.allowed:
            found["Retry-After"] = str(self.seconds)
        return found


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by partition. ``clock`` (seconds, monotonic) and ``pause`` are the seams tests
    use to move time and to see the pauses the gateway takes, instead of waiting."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 pause: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._settings = settings
        self._clock = clock
        self.pause = pause
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._paused = 0

    async def hold(self, seconds: float) -> None:
        """Hold a refusal back for ``seconds`` (its Retry-After), unless too many are held already."""
        if self._paused >= MAX_PAUSED:
            return
        self._paused += 1
        try:
            await self.pause(seconds)
        finally:
            self._paused -= 1

    def spend(self, partition: str, policy: str, limit: RateLimit) -> Verdict:
        now = self._clock()
        bucket = self._buckets.get(partition)
        if bucket is None:
            bucket = self._buckets[partition] = _Bucket(float(limit.burst), now)
            if len(self._buckets) > MAX_PARTITIONS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(partition)
            bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.at) * limit.rate)
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            whole_in = (limit.burst - bucket.tokens) / limit.rate
            return Verdict(policy, limit, True, math.floor(bucket.tokens), math.ceil(whole_in))
        # Whole seconds, rounded up (Retry-After has no fraction): never earlier than the next token.
        return Verdict(policy, limit, False, 0, max(1, math.ceil((1 - bucket.tokens) / limit.rate)))

    def for_account(self, who: Principal) -> Verdict:
        """Every key of an account spends from one budget: rotating a key or holding several never multiplies it."""
        return self.spend(f"account:{who.role}:{who.principal_id}", "account", self._settings.rate_limit_for(who.role))

    def for_address(self, request: web.Request) -> Verdict:
        """Requests without a valid key (none, malformed, or one this process must look up) from one address."""
        return self.spend(f"address:{request.remote}", "address", self._settings.rate_limit)

    def for_monitoring(self, request: web.Request) -> Verdict:
        return self.spend(f"monitoring:{request.remote}", "monitoring", self._settings.rate_limit)


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
_VERDICT = web.RequestKey("rate_limit_verdict", Verdict)


async def admit(request: web.Request, verdict: Verdict) -> None:
    """Keep the verdict for the answer's headers; a refusal is 429 ``rate_limited``, answered after
    its Retry-After has passed: a client that ignores it and keeps its connections busy then gets
    one answer per connection a second, so a flood costs the gateway next to nothing and leaves it
    to everyone else (docs/operations.md#rate-limits)."""
    request[_VERDICT] = verdict
    if not verdict.allowed:
        await request.app[RATE_LIMITER].hold(verdict.seconds)
        raise Problem(429, "rate_limited", f"over the {verdict.policy}'s budget of {verdict.limit.rate} requests a "
                      f"second (bursts of {verdict.limit.burst}); retry in {verdict.seconds} s")


async def rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer that spent from a budget says what is left of it."""
    verdict = request.get(_VERDICT)
    if verdict is not None:
        response.headers.update(verdict.headers())
