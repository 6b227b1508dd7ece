"""How a flow's update validator refuses: a non-retryable ``ApplicationError`` whose type is the
refusal, which the gateway maps to its problem (``api.problems``)."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from domain.refusals import Refusal


def refusal(refused: Refusal, message: str, errors: list[dict[str, str]] | None = None) -> ApplicationError:
    """``errors`` are the field errors of a 422."""
    details = [errors] if errors is not None else []
    return ApplicationError(message, *details, type=refused.value, non_retryable=True)
