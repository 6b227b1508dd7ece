"""The baselines of the benches: a workflow that runs one no-op activity (bench/cancellations.py),
and one that waits on a timer (bench/waiting.py).

In a module of its own, importing nothing but temporalio: the workflow sandbox re-imports a
workflow's module for every run, so a heavy module would make the baseline look slow.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def noop(value: str) -> str:
    return value


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(noop, value, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn(name="BenchBareWaitingWorkflow")
class BareWaitingWorkflow:
    """The reference of bench/waiting.py: waits on one timer, as a manual cancellation waits for an
    agent's quote (a condition that never comes true, with a timeout); returns how late it woke (s)."""

    @workflow.run
    async def run(self, seconds: float) -> float:
        deadline = workflow.now() + timedelta(seconds=seconds)
        try:
            await workflow.wait_condition(lambda: False, timeout=seconds)
        except TimeoutError:
            pass
        return (workflow.now() - deadline).total_seconds()


@workflow.defn(name="BenchBareDeadlineWorkflow")
class BareDeadlineWorkflow:
    """The reference of bench/disruption.py: waits on a timer until ``deadline`` (an instant shared by
    every run), then runs one activity, as a rescheduling applies its default when its window closes;
    returns how late it finished (s)."""

    @workflow.run
    async def run(self, deadline: str) -> float:
        due = datetime.fromisoformat(deadline)
        if due > workflow.now():
            await workflow.sleep(due - workflow.now())
        await workflow.execute_activity(noop, deadline, start_to_close_timeout=timedelta(seconds=30))
        return (workflow.now() - due).total_seconds()
