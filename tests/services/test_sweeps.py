"""The one shape of a background sweep (``services.sweeps``). Whether a round sweeps again at once
or waits is seen without a clock: each test schedules ``stop`` with ``call_soon``, which runs only
once the loop waits, so a sweep made before it is one made at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from structlog.testing import capture_logs

from services.sweeps import sweep_forever

NEVER = timedelta(hours=1)  # any wait the loop makes is ended by ``stop``, never by this
BOUND_S = 10


async def run(handled: list[int | Exception], full_batch: int | None) -> int:
    """Sweep (each round answering the next of ``handled``, or raising it) until the first wait ends it; how many rounds ran."""
    stop = asyncio.Event()
    rounds = 0

    async def sweep() -> int:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            asyncio.get_running_loop().call_soon(stop.set)
        answer = handled[rounds - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with asyncio.timeout(BOUND_S):
        await sweep_forever(sweep, name="test_sweep", every=NEVER, stop=stop, full_batch=full_batch)
    return rounds


async def test_a_full_batch_sweeps_again_at_once_and_a_partial_one_waits() -> None:
    assert await run([100, 100, 3], full_batch=100) == 3
    assert await run([99], full_batch=100) == 1


async def test_without_a_full_batch_every_round_waits() -> None:
    """The reconciler's rounds find the same rows until they move on their own: never again at once."""
    assert await run([100], full_batch=None) == 1


async def test_a_failing_round_is_logged_and_waited_out() -> None:
    with capture_logs() as logs:
        assert await run([RuntimeError("database away")], full_batch=100) == 1
    [failed] = [entry for entry in logs if entry["event"] == "sweep_failed"]
    assert failed["sweep"] == "test_sweep" and failed["error"] == "RuntimeError"


async def test_a_stopped_sweeper_sweeps_no_more() -> None:
    stop = asyncio.Event()
    stop.set()

    async def sweep() -> int:
        raise AssertionError("swept after stop")

    await sweep_forever(sweep, name="test_sweep", every=NEVER, stop=stop, full_batch=1)
