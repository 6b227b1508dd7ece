"""Who sends a request, and the ids it creates (docs/api.md#idempotency).

A request that carries an ``Idempotency-Key`` draws its ids (flow code, quote id, itinerary ids,
reservation id, …) from a generator seeded by what names it among its retries (the caller, the key
and the route): a retry whose first answer was lost in a crash draws the same ids in the same order,
so it finds what its first attempt created instead of creating it twice. Without a key, ids come
from the system's secure random.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from functools import cached_property

from domain.codes import IdShape
from store.accounts import Principal

_SECURE = secrets.SystemRandom()


@dataclass(frozen=True)
class Requester:
    principal: Principal
    # What names the request among its retries (the gateway hashes caller, Idempotency-Key and route);
    # None: the request has no key, and nothing it creates is looked for again.
    seed: bytes | None = None

    @cached_property
    def ids(self) -> random.Random:
        """The request's id generator: one per request, so its draws follow one sequence."""
        return _SECURE if self.seed is None else random.Random(self.seed)

    @property
    def update_id(self) -> str | None:
        """The id a workflow update is sent with: Temporal answers a retry with the same id from the
        first update's outcome instead of running it again. None without an Idempotency-Key."""
        return None if self.seed is None else "upd-" + self.seed.hex()[:40]

    @property
    def opened_by(self) -> str:
        """The caller as a flow it opens records it, so a retry of that request finds the flow."""
        return f"{self.principal.role}:{self.principal.principal_id}"

    def new_id(self, shape: IdShape) -> str:
        """A new id of ``shape`` (``QUOTE_ID``, ``ITINERARY_ID``, …): from the request's ids when a retry
        must find it again, else from one read of the OS's randomness."""
        return shape.secure() if self.seed is None else shape.new(self.ids)
