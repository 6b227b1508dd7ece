"""The contract between workflows and the worker's activities: activity names and the error types
that cross between them.

Workflows call activities by name, so that no workflow module imports I/O code (aiohttp,
SQLAlchemy); the activities register under the same names.
"""

from __future__ import annotations

RECORD_FLOW = "record_flow"
ACQUIRE_PRODUCT = "acquire_product"
CANCEL_AT_SUPPLIER = "cancel_at_supplier"
RESCHEDULE_AT_SUPPLIER = "reschedule_at_supplier"
APPLY_CHANGE = "apply_change"
SUBMIT_SPECIAL_REQUEST = "submit_special_request"
ASK_SPECIAL_REQUEST = "ask_special_request"
DELIVER_EVENT = "deliver_event"
MARK_EVENT_FAILED = "mark_event_failed"

# ApplicationError types raised by activities.
SUPPLIER_REFUSED = "supplier_refused"  # the supplier answered no: not retried, the flow ends ``failed``
PRODUCT_BUSY = "product_busy"  # retryable: a flow that waits its turn tries again
