"""The ids of the ``workflow.patched`` markers: each names one change to what a running flow decides.

A patch lives through three steps, ``workflow.patched`` → ``workflow.deprecate_patch`` → removed,
each taken only once no run that needs the step before can still be open. The rule for when, the
query that checks it and the table of live patches, with where each stands:
docs/workflows.md#changing-a-running-flow. An id is never reused.
"""

from __future__ import annotations

# A transition caused by a partner's or agent's update is recorded by a normal activity, once the
# update's acceptance is durable, not by a local activity in the accepting task (flow_transitions).
INPUT_DURABLE_FIRST = "record-after-the-update-is-durable"

# A special request's airline says when it answers (supplier_steps.ask_special_request); before,
# the flow waited a fixed delay from its input.
SUPPLIER_SAYS_WHEN = "supplier-says-when-it-answers"

# A manual cancellation expires at the quote deadline it shows (cancellation); before, it waited
# the agent-quote window from the moment its first move was recorded, a little after that deadline.
EXPIRE_AT_THE_DEADLINE = "expire-at-the-deadline-shown"

# A transition the store refuses for good parks the flow until an operator's ``retry_record``
# (flow_transitions); before, the refusal was retried without end (or, raised, failed the flow).
PARK_A_REFUSED_RECORD = "park-a-refused-record"

# A schedule change arriving while a cancellation is open makes it involuntary (cancellation's
# ``schedule_changed`` signal): awaiting a quote it is marked so, awaiting a decision it is
# re-quoted at penalty 0, accepted it is charged nothing. Before, the signal was not handled.
INVOLUNTARY_ON_SCHEDULE_CHANGE = "involuntary-on-schedule-change"

# An automatic cancellation opened with ``opened_at`` has its ``processing`` recorded by the gateway,
# in the write that opens the flow (services.cancellations): the workflow's first task goes straight to
# the supplier. Before, the first task recorded ``processing`` with a local activity.
PROCESSING_RECORDED_AT_OPENING = "processing-recorded-at-opening"

# A rescheduling opens with one record (``open_waiting``: waiting_for_product, the product's lock and,
# when free, awaiting_partner_action with its event, in one local activity); before, a move, an
# ``acquire_product`` activity and a move: two workflow tasks and an activity task per flow
# (docs/operations.md#disruptions-at-scale).
OPEN_IN_ONE_RECORD = "rescheduling-opens-in-one-record"
