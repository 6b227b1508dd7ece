"""The README's tour, ``python -m sandbox.tour``, runs end to end against a real stack: the gateway over
real HTTP, a worker, the real dev server and SQLite, in a process of its own as a partner runs it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

TOUR_BOUND_S = 180
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'aftersales.db'}"


async def test_the_tour_runs_end_to_end(http: TestClient) -> None:
    base = str(http.make_url("")).rstrip("/")
    tour = await asyncio.create_subprocess_exec(sys.executable, "-m", "sandbox.tour", "--base", base, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(tour.communicate(), TOUR_BOUND_S)
    text = output.decode()

    assert tour.returncode == 0, text
    assert "The tour is complete." in text
    for seen in ("cancelled: penalty 120.00 EUR, refund 120.00 EUR", "awaiting_partner_decision: penalty 100.00 EUR, refund 500.00 EUR",
                 "rescheduling_window passed; auto_accepted with proposed", "rescheduling.auto_accepted", "refund.posted"):
        assert seen in text, text


async def test_the_tour_stops_saying_why(http: TestClient) -> None:
    base = str(http.make_url("")).rstrip("/")
    tour = await asyncio.create_subprocess_exec(sys.executable, "-m", "sandbox.tour", "--base", base, "--admin-key", "wrong",
                                                cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(tour.communicate(), TOUR_BOUND_S)

    assert tour.returncode == 1 and "answered 401" in output.decode()
