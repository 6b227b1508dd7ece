"""The reservation read shows each traveller from the stored fares as they are, without validating the
product again: exactly what the validated path gives (docs/api.md#travellers-and-fares)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.products import ReservationSpec
from store.reservation_records import ProductRecord

TRAVELLERS = [{"traveller_id": f"T{n}", "name": f"Traveller {n}"} for n in (1, 2, 3)]


def record(status: str, cancelled: dict[str, str] | None, fares: bool = True) -> ProductRecord:
    spec = ReservationSpec.model_validate({"travellers": TRAVELLERS, "products": [{
        "kind": "other", "name": "Transfer", "starts_at": "2031-06-01T09:00:00+00:00",
        "ends_at": "2031-06-01T10:00:00+00:00", "price": {"amount": "100", "currency": "EUR"}, "vat_rate": "0.10",
        "cancellation_policy": {"mode": "automatic"}}]})
    details = (spec.sold() if fares else spec.products)[0].model_dump(mode="json", exclude_none=not fares)
    now = datetime.now(timezone.utc)
    return ProductRecord("PRD-1", "RES-1", "ptn_1", "confirmed", "other", status, now, now, details, None, TRAVELLERS,
                         cancelled)


@pytest.mark.parametrize(("status", "cancelled"), [("confirmed", None), ("confirmed", {"T2": "CAN-1"}),
                                                   ("cancelled", {"T2": "CAN-1"}), ("cancelled", None)])
def test_the_view_shows_what_the_validated_travellers_are(status: str, cancelled: dict[str, str] | None) -> None:
    stored = record(status, cancelled)
    assert stored.view()["travellers"] == [t.model_dump(mode="json") for t in stored.travellers()]
    # A product stored without fares (before revision 0014) shows the defaults all the same.
    assert record(status, cancelled, fares=False).view()["travellers"] == stored.view()["travellers"]
    assert [t["fare"]["amount"] for t in stored.view()["travellers"]] == ["33.34", "33.33", "33.33"]
