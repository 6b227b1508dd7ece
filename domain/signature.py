"""The ``Aftersales-Signature`` header on triggers (docs/triggers.md).

``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``: the timestamp is signed
with the body so a captured request cannot be replayed later than the receiver's tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SIGNATURE_HEADER = "Aftersales-Signature"
# Unix seconds in ASCII digits, 12 at most (year 33658): int() would take other digits ("²" raises,
# "١٢" parses) and thousands of them (it raises past 4,300, after spending the CPU).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes, *also: str) -> str:
    """The header value: one ``v1=`` for ``secret`` and one more for each secret in ``also``
    (during a secret rotation both the new and the previous secret sign)."""
    signatures = ",".join(f"v1={_digest(key, timestamp, body)}" for key in (secret, *also))
    return f"t={timestamp},{signatures}"


def verify(secret: str, header: str, body: bytes, tolerance_s: int, now: float) -> bool:
    """True when one ``v1`` of ``header`` signs ``body`` and ``t`` is within ``tolerance_s`` of ``now``.

    Several ``v1`` entries are allowed so a sender can sign with an old and a new secret
    while a partner rotates it.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and _TIMESTAMP.fullmatch(value):
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    # compare_digest on every candidate, without short-circuit, keeps the timing flat.
    # Compared as bytes: a forged non-ASCII candidate is just a mismatch, never an error.
    wanted = expected.encode()
    return sum(hmac.compare_digest(wanted, candidate.encode()) for candidate in candidates) > 0
