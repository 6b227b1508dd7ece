"""Opaque cursors for lists that page on a row sequence (the payments journal, the refunds ledger).

A cursor names the last row of a page and the query it was given for: it is refused (422 on
``query.cursor``) when it is not one this gateway gave, or when it is sent with other filters than
the page it came from, so a client never silently pages through a different list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from domain.refusals import Refused, invalid_field

# The rows' sequence is an INTEGER column, 32 bits on PostgreSQL: a cursor past it names no row, and
# the driver would refuse to send it.
MAX_SEQ = 2**31 - 1


def _fingerprint(scope: dict[str, Any]) -> str:
    canonical = json.dumps(scope, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def next_cursor(seq: int, scope: dict[str, Any]) -> str:
    """The cursor of the page after the row ``seq``, for the query ``scope`` (its filters and its caller)."""
    raw = json.dumps({"after": seq, "query": _fingerprint(scope)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_seq(cursor: str | None, scope: dict[str, Any]) -> int | None:
    """The row a cursor names; None for the first page."""
    if cursor is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        seq, query = decoded["after"], decoded["query"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise _forged() from None
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ or query != _fingerprint(scope):
        raise _forged()
    return seq


def _forged() -> Refused:
    return invalid_field("query.cursor", "not a cursor this list gave for these filters: start again without it")
