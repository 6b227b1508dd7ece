"""The baseline of bench/cancellations.py: a workflow that runs one no-op activity.

In a module of its own, importing nothing but temporalio: the workflow sandbox re-imports a
workflow's module for every run, so a heavy module would make the baseline look slow.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def noop(value: str) -> str:
    return value


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(noop, value, start_to_close_timeout=timedelta(seconds=30))
