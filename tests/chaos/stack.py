"""The whole stack as real processes that a chaos test can SIGKILL and start again on the same data:
a Temporal dev server (its database in a file), a worker and a gateway.

Each part is started with its own environment, as an operator would run it (``python -m worker``,
``python -m api``, ``temporal server start-dev``); readiness is read from the part's own output
(the dev server's banner, ``worker_started``, ``gateway_listening``), never guessed with a sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.conftest import free_ports

REPO = Path(__file__).resolve().parents[2]
READY_S = 90.0


@dataclass
class Part:
    """One process of the stack; ``ready`` is set when its output shows ``marker``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    marker: str
    log: Path
    process: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    starts: int = 0
    _reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.ready = asyncio.Event()
        self.starts += 1
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, cwd=REPO, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, limit=1 << 20,
        )
        self._reader = asyncio.create_task(self._read(self.process))
        ready = asyncio.create_task(self.ready.wait())
        exited = asyncio.create_task(self.process.wait())
        done, _ = await asyncio.wait({ready, exited}, timeout=READY_S, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        exited.cancel()
        if not self.ready.is_set():
            raise RuntimeError(f"{self.name} not ready within {READY_S:.0f}s (see {self.log})")

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        with self.log.open("a") as sink:
            sink.write(f"----- start {self.starts} (pid {process.pid})\n")
            while line := await process.stdout.readline():
                text = line.decode(errors="replace")
                sink.write(text)
                if self.marker in text:
                    self.ready.set()

    async def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as when the machine or the OOM killer takes it."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=5)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                await self.kill()


@dataclass
class Stack:
    """Dev server, worker and gateway on free ports, sharing one data dir and database."""

    temporal: Part
    worker: Part
    gateway: Part
    base_url: str
    temporal_target: str
    # Set whenever every part is up; cleared while a part is down. Clients that failed wait on it.
    up: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    kills: list[str] = field(default_factory=list)

    @property
    def parts(self) -> dict[str, Part]:
        return {"temporal": self.temporal, "worker": self.worker, "gateway": self.gateway}

    async def start(self) -> None:
        for part in (self.temporal, self.worker, self.gateway):
            await part.start()
        self.up.set()

    async def crash(self, *names: str) -> None:
        """SIGKILL the named parts together, then start them again on the same data."""
        await self._mark(up=False)
        self.kills.append("+".join(names))
        for name in names:
            await self.parts[name].kill()
        for name in ("temporal", "worker", "gateway"):
            if name in names:
                await self.parts[name].start()
        await self._mark(up=True)

    async def _mark(self, up: bool) -> None:
        (self.up.set if up else self.up.clear)()
        async with self.changed:
            self.changed.notify_all()

    async def close(self) -> None:
        self.up.clear()
        for part in (self.gateway, self.worker, self.temporal):
            await part.stop()


def make_stack(data_dir: Path, database_url: str, **settings: str) -> Stack:
    http_port, temporal_port, ui_port = free_ports(3)
    temporal_target = f"127.0.0.1:{temporal_port}"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AFTERSALES_", "TEMPORAL_"))}
    env.update(
        PYTHONUNBUFFERED="1",
        AFTERSALES_ENV="sandbox",
        AFTERSALES_DATA_DIR=str(data_dir),
        AFTERSALES_DATABASE_URL=database_url,
        AFTERSALES_HTTP_PORT=str(http_port),
        TEMPORAL_ADDRESS=temporal_target,
        AFTERSALES_LOG_FORMAT="json",
        **settings,
    )
    binary = str(Path(sys.executable).parent / "temporal")
    data_dir.mkdir(parents=True, exist_ok=True)

    def part(name: str, argv: list[str], marker: str) -> Part:
        return Part(name, argv, env, marker, data_dir / f"{name}.log")

    return Stack(
        temporal=part("temporal", [
            binary, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(temporal_port),
            "--ui-port", str(ui_port), "--db-filename", str(data_dir / "temporal.db"), "--log-level", "error",
        ], "Temporal UI"),
        worker=part("worker", [sys.executable, "-m", "worker"], "worker_started"),
        gateway=part("gateway", [sys.executable, "-m", "api"], "gateway_listening"),
        base_url=f"http://127.0.0.1:{http_port}",
        temporal_target=temporal_target,
    )


KillPlan = list[tuple[float, tuple[str, ...]]]

# When (share of the flows started) to kill what: the gateway at two moments of the burst of
# starts, the worker, the dev server, then everything at once (as when the launcher is killed).
DEFAULT_PLAN: KillPlan = [
    (0.15, ("gateway",)),
    (0.30, ("worker",)),
    (0.50, ("gateway",)),
    (0.65, ("temporal",)),
    (0.85, ("temporal", "worker", "gateway")),
]


def progress_watcher(total: int) -> tuple[Callable[[], None], Callable[[float], asyncio.Future[None]]]:
    """``tick()`` counts a started flow; ``reached(share)`` resolves once that share has started."""
    started = [0]
    waiting: list[tuple[float, asyncio.Future[None]]] = []

    def tick() -> None:
        started[0] += 1
        for share, future in list(waiting):
            if started[0] >= share * total and not future.done():
                future.set_result(None)
                waiting.remove((share, future))

    def reached(share: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if started[0] >= share * total:
            future.set_result(None)
        else:
            waiting.append((share, future))
        return future

    return tick, reached
