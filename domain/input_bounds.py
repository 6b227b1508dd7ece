"""What a value arriving in a request may be (docs/api.md#conventions), beyond being well formed.

A request is validated with :data:`FROM_REQUEST` as its pydantic context (``api.endpoints.parse``
does it for every body and query). The bounds then apply: amounts under :data:`MAX_REQUEST_AMOUNT`,
times and dates in the years :data:`FIRST_YEAR` to :data:`LAST_YEAR`. Values the service computes
or reads back (a workflow's payload, a stored product) are validated without it: they came from
bounded input, and a later, tighter bound must never make a stored record unreadable.

Times are RFC 3339 strings with an offset and dates ``YYYY-MM-DD`` strings whatever the context:
pydantic would also take Unix seconds for a time and a midnight datetime for a date.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ValidationInfo

FROM_REQUEST: dict[str, Any] = {"from_request": True}

# 12 integer digits: a reservation's books (sale, changes, refunds) and every amount computed from
# them (penalties, VAT, positions) stay six orders of magnitude inside the arithmetic's own ceiling
# (domain.money.MAX_ABS_AMOUNT) and the stored amount's 40 characters.
MAX_REQUEST_AMOUNT = Decimal(10) ** 12

# Far enough from datetime's years 1 and 9999 that no offset, window or validity added to a time
# can leave them (a duration setting is at most 100 years: domain.durations).
FIRST_YEAR, LAST_YEAR = 1900, 2200

_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME_EXAMPLE = "an RFC 3339 time with an offset, like 2027-03-20T08:00:00+01:00"


def from_request(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and info.context.get("from_request") is True


def _rfc3339_text(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError(f"must be {_TIME_EXAMPLE}")


def _iso_date_text(value: object) -> object:
    if (isinstance(value, date) and not isinstance(value, datetime)) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


def _in_years(value: date, info: ValidationInfo) -> date:
    # The year as written, before any offset is applied: year 1 at +01:00 is year 0 in UTC.
    if from_request(info) and not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be in the years {FIRST_YEAR} to {LAST_YEAR}")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_years)]
"""A time a request carries: RFC 3339 with an offset (the offset is kept), in the years allowed."""

CalendarDate = Annotated[date, BeforeValidator(_iso_date_text), AfterValidator(_in_years)]
"""A date a request carries: ``YYYY-MM-DD``, in the years allowed."""
