"""What a product's travellers (docs/api.md#travellers-and-fares) cost the reservation read, the API's
hot path: the view as it is built (from the stored fares, as stored) next to building it from the
validated product (``ProductRecord.travellers``), for one flight of N travellers with one cancelled.

Not a test: it prints figures. Usage:

    .venv/bin/python -m bench.traveller_view [-t 3] [-r 5000]
"""

from __future__ import annotations

import argparse
import timeit
from datetime import datetime, timezone

from domain.products import ReservationSpec
from store.reservation_records import ProductRecord


def record(travellers: int) -> ProductRecord:
    people = [{"traveller_id": f"T{n}", "name": f"Traveller {n}"} for n in range(1, travellers + 1)]
    spec = ReservationSpec.model_validate({"travellers": people, "products": [{
        "kind": "flight", "carrier": "ZZ", "price": {"amount": "240.00", "currency": "EUR"}, "vat_rate": "0.081",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": "2031-01-01T08:00:00Z",
                      "arrival": "2031-01-01T10:00:00Z", "flight_number": "ZZ101"}],
        "cancellation_policy": {"mode": "automatic", "tiers": [{"hours_before_start": 168, "penalty_percent": "50"}]},
        "change_policy": {"changeable": True, "change_fee": {"amount": "30", "currency": "EUR"}},
        "special_request_options": [{"code": "WCHR", "name": "Wheelchair"}],
    }]})
    now = datetime.now(timezone.utc)
    return ProductRecord("PRD-1", "RES-1", "ptn_1", "confirmed", "flight", "confirmed", now, now,
                         spec.sold()[0].model_dump(mode="json"), None, people, {"T1": "CAN-1"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-t", "--travellers", type=int, default=3)
    parser.add_argument("-r", "--runs", type=int, default=5000)
    args = parser.parse_args()
    product = record(args.travellers)
    built = timeit.timeit(product.view, number=args.runs) / args.runs
    validated = timeit.timeit(lambda: [t.model_dump(mode="json") for t in product.travellers()],
                              number=args.runs) / args.runs
    print(f"one product, {args.travellers} travellers, {args.runs} runs:")
    print(f"  view() as the reservation read builds it: {built * 1e6:8.1f} µs")
    print(f"  travellers from the validated product:    {validated * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
