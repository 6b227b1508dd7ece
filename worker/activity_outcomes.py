"""The worker's own metric (docs/operations.md#metrics): every activity execution counted by activity
and outcome, exported with the Temporal SDK's metrics on ``AFTERSALES_WORKER_METRICS_PORT``.

Outcomes: ``completed``; ``refused`` (a non-retryable answer such as the supplier refusing a cancel:
the flow turns it into its outcome; or the store refusing a record for good, ``record_refused``: the
flow parks until an operator retries it); ``failed`` (an attempt Temporal retries per the activity's
policy, e.g. a product busy with another flow, or an outage); ``cancelled`` (the flow or a worker
shutdown cancelled it). ``error`` names the failure's type, a bounded set the code defines.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity
from temporalio.common import MetricCounter, MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

# "_total" in the name: the SDK exporter does not add the suffix Prometheus conventions want on counters.
ACTIVITY_EXECUTIONS = "aftersales_activity_executions_total"


def outcome_of(error: BaseException | None) -> tuple[str, str]:
    """(outcome, error type) of an activity execution that raised ``error`` (None: it returned)."""
    if error is None:
        return "completed", ""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled", ""
    if isinstance(error, ApplicationError):
        return ("refused" if error.non_retryable else "failed"), error.type or "ApplicationError"
    return "failed", type(error).__name__


class ActivityOutcomes(Interceptor):
    def __init__(self, meter: MetricMeter) -> None:
        self._executions = meter.create_counter(ACTIVITY_EXECUTIONS, "Activity executions, by activity and outcome")

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Counted(next, self._executions)


class _Counted(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, executions: MetricCounter) -> None:
        super().__init__(next)
        self._executions = executions

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        error: BaseException | None = None
        try:
            return await self.next.execute_activity(input)
        except BaseException as raised:
            error = raised
            raise
        finally:
            outcome, error_type = outcome_of(error)
            self._executions.add(1, {"activity": activity.info().activity_type, "outcome": outcome, "error": error_type})
