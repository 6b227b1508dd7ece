"""Durations as operators write them: ``<int><s|m|h|d>`` (``90s``, ``15m``, ``72h``, ``7d``)."""

from __future__ import annotations

import re
from datetime import timedelta

# ASCII digits (``\d`` would take any script's), and at most 100 years: every window is added to
# times of the years domain.input_bounds allows, and the sum must stay a datetime.
_DURATION = re.compile(r"^([0-9]{1,12})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=36_525)


def parse_duration(text: str) -> timedelta:
    """Parse ``<int><s|m|h|d>``; raise ``ValueError`` for anything else (including zero)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"expected a duration like 90s, 15m, 72h or 7d, got {text!r}")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {text!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"expected at most 100 years (36525d), got {text!r}")
    return timedelta(seconds=seconds)
