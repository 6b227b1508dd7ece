"""The gateway's route handlers parse, call one service function and render: nothing in them reads or
writes the store (docs/architecture.md). Only the cross-cutting parts reach it: authentication and
idempotency (middlewares), health and metrics."""

from __future__ import annotations

import re
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "api"
CROSS_CUTTING = {"middlewares.py", "health.py", "metrics.py", "app.py"}


def test_no_route_handler_reaches_the_store() -> None:
    reaching = {
        path.name: found
        for path in sorted(API.glob("*.py"))
        if path.name not in CROSS_CUTTING and (found := re.findall(r".*\.store\b.*", path.read_text()))
    }
    assert reaching == {}
