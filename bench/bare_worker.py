"""A worker running only bench/bare.py's workflows and activity, as a process of its own so that a
bench measures its memory and CPU apart from everything else. Usage:

    .venv/bin/python -m bench.bare_worker TEMPORAL_ADDRESS TASK_QUEUE

Prints ``bare_worker_started`` once it polls; SIGTERM or SIGINT stops it. The SDK's defaults
throughout (as `python -m worker`, which sets none of the options that bear on memory either).
"""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import BareDeadlineWorkflow, BareWaitingWorkflow, BareWorkflow, noop


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[BareWorkflow, BareWaitingWorkflow, BareDeadlineWorkflow], activities=[noop]):
        print("bare_worker_started", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
