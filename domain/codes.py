"""Flow codes (docs/api.md#conventions) and other public ids.

Generators take the random source as an argument: inside a Temporal workflow the
caller passes ``workflow.random()``, so replaying the workflow yields the same code.
"""

from __future__ import annotations

import random
import re
from enum import StrEnum

_CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lowercased: no 0/1/8/9 look-alikes
_CODE_LENGTH = 8
_ID_LENGTH = 20
_FLOW_CODE = re.compile(r"(CAN|CF|RS|SR)-[0-9A-Z]{8}")


class FlowKind(StrEnum):
    CANCELLATION = "cancellation"
    CHANGE = "change"
    RESCHEDULING = "rescheduling"
    SPECIAL_REQUEST = "special_request"

    @property
    def prefix(self) -> str:
        return _PREFIXES[self]


_PREFIXES: dict[FlowKind, str] = {
    FlowKind.CANCELLATION: "CAN",
    FlowKind.CHANGE: "CF",
    FlowKind.RESCHEDULING: "RS",
    FlowKind.SPECIAL_REQUEST: "SR",
}
_KINDS_BY_PREFIX = {prefix: kind for kind, prefix in _PREFIXES.items()}


def new_flow_code(kind: FlowKind, rng: random.Random) -> str:
    return f"{kind.prefix}-" + "".join(rng.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))


def parse_flow_code(text: str) -> FlowKind:
    """The kind a code names; ``ValueError`` for anything that is not exactly a flow code."""
    match = _FLOW_CODE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not a flow code (CAN-, CF-, RS- or SR- and 8 of [0-9A-Z]): {text!r}")
    return _KINDS_BY_PREFIX[match.group(1)]


def new_id(prefix: str, rng: random.Random) -> str:
    """``prefix`` + 20 base32 characters (100 bits), e.g. ``evt_k3j...``; ids never need to be typed by people."""
    return prefix + "".join(rng.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
