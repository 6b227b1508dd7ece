"""A small HTTP/1.1 load client for bench/reads.py, run as its own process so the bench's parent
does not compete with it for CPU. Usage:

    .venv/bin/python -m bench.load URL [-c 20] [-d 10 | -r 50000] [--warmup 1] [-H 'Name: value']

C keep-alive connections each send one GET, read the whole answer and send the next. Pure Python,
but on asyncio's protocol layer (no StreamReader, no client session): it writes one prepared
request and parses only the status and Content-Length, at about a fifth of the CPU per request an
aiohttp ClientSession costs (measured here: 23k req/s at 41 % of a core against 6.4k at 64 %).
Prints ``measuring`` once the warm-up is over, ``measured`` at the end (so a caller can read the
server's CPU over the same span), then one JSON line: requests, seconds, req/s, p50 and p99 in
ms, the answers' statuses and the client's own CPU use. The warm-up's requests are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from bench.stack import percentile


class Connection(asyncio.Protocol):
    """One keep-alive connection that answers ``await send()`` with the status of the next response."""

    def __init__(self, request: bytes) -> None:
        self._request = request
        self._buffer = bytearray()
        self._need: int | None = None  # bytes of the whole response, once its head is read
        self._status = 0
        self._waiter: asyncio.Future[int] | None = None
        self._transport: asyncio.Transport | None = None
        self._lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._need is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end]).lower()
            self._status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._fail(ConnectionError("a response without Content-Length (chunked?) is not supported"))
                return
            self._need = end + 4 + int(head[at + 17 :].split(b"\r\n", 1)[0])
        if len(self._buffer) >= self._need:
            del self._buffer[: self._need]
            self._need = None
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(self._status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionError("the server closed the connection")
        self._fail(self._lost)

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    def send(self) -> asyncio.Future[int]:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        if self._lost is not None:  # closed after its last answer (Connection: close, a keep-alive timeout)
            self._waiter.set_exception(ConnectionError("the connection is closed"))
        else:
            self._transport.write(self._request)
        return self._waiter


async def main(url: str, connections: int, duration: float, requests: int | None, warmup: float,
               headers: list[str]) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = "".join(f"{h}\r\n" for h in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    issued = 0

    # The connections stay open from the warm-up into the measurement.
    pool: list[Connection | None] = [None] * connections

    async def drive(slot: int, keep_going: Callable[[], bool], record: bool) -> None:
        """One connection's loop: a request, its whole answer, the next; reconnects if the server hangs up."""
        nonlocal errors, issued
        while keep_going():
            connection = pool[slot]
            if connection is None:
                _transport, connection = await loop.create_connection(lambda: Connection(request), host, port)
                pool[slot] = connection
            issued += 1
            started = time.perf_counter()
            try:
                status = await connection.send()
            except OSError:  # ConnectionError among them: reconnect
                errors += 1
                pool[slot] = None
                continue
            if record:
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

    warm_until = time.perf_counter() + warmup
    await asyncio.gather(*(drive(i, lambda: time.perf_counter() < warm_until, False) for i in range(connections)))
    print("measuring", flush=True)
    errors = issued = 0
    started = time.perf_counter()
    cpu = time.process_time()
    until = started + duration
    keep_going = (lambda: issued < requests) if requests is not None else (lambda: time.perf_counter() < until)
    await asyncio.gather(*(drive(i, keep_going, True) for i in range(connections)))
    elapsed = time.perf_counter() - started
    print("measured", flush=True)
    cpu = time.process_time() - cpu
    return {
        "requests": len(latencies), "seconds": elapsed, "rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
        "statuses": {str(k): v for k, v in sorted(statuses.items())}, "errors": errors, "connections": connections,
        "client_cpu_percent": 100 * cpu / elapsed,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=20)
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds measured (after the warm-up)")
    parser.add_argument("-r", "--requests", type=int, default=None, help="a count of requests instead of a duration")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load not counted, first")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value', repeatable")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.url, args.connections, args.duration, args.requests, args.warmup, args.header))))
