"""The reference of bench/reads.py: an aiohttp hello-world that answers every GET with the bytes of
a file as application/json. Usage:

    .venv/bin/python -m bench.hello --port PORT --body FILE

Plain aiohttp, no middleware, no access log: what serving those bytes costs at the least.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web


def app(body: bytes) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    served = web.Application()
    served.router.add_get("/{tail:.*}", answer)
    return served


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    args = parser.parse_args()
    web.run_app(app(args.body.read_bytes()), host="127.0.0.1", port=args.port, access_log=None, print=None)
