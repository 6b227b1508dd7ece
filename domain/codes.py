"""Every id and code the service gives out, and the shape of each (docs/api.md#conventions).

An id is ``prefix`` + a fixed number of characters of one alphabet (:class:`IdShape`). Where it is
drawn from depends on who needs to draw the same one again:

- a workflow passes ``workflow.random()`` to :meth:`IdShape.new`: a replay draws the same flow
  codes and event ids;
- a request passes its generator (``api.request_ids``), seeded by its Idempotency-Key: a retry draws
  the same flow code, reservation, product, quote and itinerary ids as its first attempt;
- the store mints what it writes in its own transactions (journal entries, refunds, their events,
  partners, agents, keys) with :meth:`IdShape.secure`: nobody draws those again, and they are
  minted inside a cancellation's transaction, so each takes one read of the OS's randomness.

:meth:`IdShape.new` draws one ``rng.choice`` per character, as this service always has: a retry or a
replay that spans an upgrade still draws the same ids.
"""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

_UPPER = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_HEX = "0123456789abcdef"
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lowercased: no 0/1/8/9 look-alikes
# Random bytes a secure id reads beyond one per character when some bytes are dropped (see
# IdShape.secure): with 36 characters, 4 byte values in 256 are, and 8 spare bytes run short (and
# are read again) about once in 4 * 10**11 ids.
_SPARE_BYTES = 8


@dataclass(frozen=True)
class IdShape:
    """``prefix`` + ``length`` characters of ``alphabet``."""

    prefix: str
    alphabet: str
    length: int
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _by_byte: bytes = field(init=False, repr=False, compare=False)
    _uneven: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        size = len(self.alphabet)
        pattern = re.compile(re.escape(self.prefix) + f"[{re.escape(self.alphabet)}]{{{self.length}}}")
        object.__setattr__(self, "_pattern", pattern)
        # A random byte names the character at its remainder; the top 256 % size bytes would name
        # the first characters once more than the others, so they are dropped.
        object.__setattr__(self, "_by_byte", bytes(self.alphabet.encode()[b % size] for b in range(256)))
        object.__setattr__(self, "_uneven", bytes(range(256 - 256 % size, 256)))

    def new(self, rng: random.Random) -> str:
        """An id drawn from ``rng``: the same generator state draws the same id."""
        return self.prefix + "".join(rng.choice(self.alphabet) for _ in range(self.length))

    def secure(self) -> str:
        """An id from one read of the OS's randomness, a byte per character, every character as
        likely as any other (a ``SystemRandom`` would read once per character)."""
        spare = _SPARE_BYTES if self._uneven else 0
        while True:
            drawn = secrets.token_bytes(self.length + spare).translate(self._by_byte, self._uneven)
            if len(drawn) >= self.length:
                return self.prefix + drawn[: self.length].decode()

    def fits(self, text: object) -> bool:
        """Whether ``text`` is exactly an id of this shape."""
        return isinstance(text, str) and self._pattern.fullmatch(text) is not None


# The public ids, as docs/api.md#conventions lists them: one line a shape, with the prefixes it has.
RESERVATION_ID, PRODUCT_ID = (IdShape(prefix, _UPPER, 10) for prefix in ("RES-", "PRD-"))
PARTNER_ID, AGENT_ID, SUPPLIER_ID, KEY_ID = (IdShape(prefix, _HEX, 16) for prefix in ("ptn_", "agt_", "sup_", "key_"))
QUOTE_ID, ITINERARY_ID, SANDBOX_CHANGE_ID = (IdShape(prefix, _HEX, 20) for prefix in ("qt_", "itn_", "sbx_"))
EVENT_ID, PAYMENT_ID, REFUND_ID, CREDIT_ID = (IdShape(prefix, _BASE32, 20) for prefix in ("evt_", "pay_", "rfd_", "crd_"))
# A flight-level schedule change (docs/rescheduling.md#disruptions), drawn from the supplier's ids.
DISRUPTION_ID = IdShape("dsr_", _BASE32, 20)

class FlowKind(StrEnum):
    CANCELLATION = "cancellation"
    CHANGE = "change"
    RESCHEDULING = "rescheduling"
    SPECIAL_REQUEST = "special_request"

    @property
    def prefix(self) -> str:
        return _PREFIXES[self]

    @property
    def code_shape(self) -> IdShape:
        """A flow code: the kind's prefix, a dash and 8 of ``[0-9A-Z]`` (docs/api.md#conventions)."""
        return _CODE_SHAPES[self]


_PREFIXES: dict[FlowKind, str] = {
    FlowKind.CANCELLATION: "CAN",
    FlowKind.CHANGE: "CF",
    FlowKind.RESCHEDULING: "RS",
    FlowKind.SPECIAL_REQUEST: "SR",
}
_CODE_SHAPES = {kind: IdShape(f"{prefix}-", _UPPER, 8) for kind, prefix in _PREFIXES.items()}


def new_flow_code(kind: FlowKind, rng: random.Random) -> str:
    return kind.code_shape.new(rng)


def parse_flow_code(text: str) -> FlowKind:
    """The kind a code names; ``ValueError`` for anything that is not exactly a flow code."""
    for kind, shape in _CODE_SHAPES.items():
        if shape.fits(text):
            return kind
    raise ValueError(f"not a flow code (CAN-, CF-, RS- or SR- and 8 of [0-9A-Z]): {text!r}")
