"""Opaque cursors for keyset paging: where a page ended (a row's sequence in the payments journal and the
refunds ledger; a deadline, a time and a code in the lists of flows) and the query it was given for.

A cursor is refused (422 on ``query.cursor``) when it is not one this gateway gave: its check covers the
position and the query (the filters and the caller), so a cursor edited by hand, or sent with other
filters than the page it came from, is told apart, and a client never silently pages through a different
list. The check is a digest, not a secret: whoever forges one only moves within its own list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from domain.refusals import Refused, invalid_field

# The rows' sequence is an INTEGER column, 32 bits on PostgreSQL: a cursor past it names no row, and
# the driver would refuse to send it.
MAX_SEQ = 2**31 - 1

Position = TypeVar("Position")


def _check(after: Any, scope: dict[str, Any]) -> str:
    canonical = json.dumps({"after": after, "scope": scope}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def next_cursor(after: int | list[Any], scope: dict[str, Any]) -> str:
    """The cursor of the page after ``after`` (a row's seq, or a position as JSON), for the query ``scope``."""
    raw = json.dumps({"after": after, "check": _check(after, scope)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_position(cursor: str | None, scope: dict[str, Any], parse: Callable[[Any], Position]) -> Position | None:
    """The position a cursor names, read back by ``parse`` (which raises ``ValueError`` for what it
    never wrote); None for the first page."""
    if cursor is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after, check = decoded["after"], decoded["check"]
        if check != _check(after, scope):
            raise ValueError("the check does not match")
        return parse(after)
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError):
        raise _forged() from None


def _seq(after: Any) -> int:
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_SEQ:
        raise ValueError("not a row sequence")
    return after


def cursor_seq(cursor: str | None, scope: dict[str, Any]) -> int | None:
    """The row a cursor names; None for the first page."""
    return cursor_position(cursor, scope, _seq)


def _forged() -> Refused:
    return invalid_field("query.cursor", "not a cursor this list gave for these filters: start again without it")
