"""How a flow's update validator refuses: an ``ApplicationError`` whose type is the refusal, which the
gateway maps to its problem (``api.problems``). Non-retryable, unless the refusal is for now only
(the flow has not reached that step yet): the gateway then answers it with ``Retry-After`` and
does not store it under the request's Idempotency-Key."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from domain.refusals import Refusal


def refusal(
    refused: Refusal, message: str, errors: list[dict[str, str]] | None = None, *, not_yet: bool = False
) -> ApplicationError:
    """``errors`` are the field errors of a 422; ``not_yet``: refused until the flow gets further."""
    details = [errors] if errors is not None else []
    return ApplicationError(message, *details, type=refused.value, non_retryable=not not_yet)
