"""The README's tour of the sandbox, run end to end with nothing pasted by hand:
``python -m sandbox.tour [--base http://127.0.0.1:8080]`` against a running stack (``make run``).

It does what a partner's developer does on a first day, printing each call and the answer's gist:
the admin creates a partner; the partner books a flight and a hotel; cancels the flight at the
automatic penalty and reads the events, payments and refunds it caused; cancels the hotel, which an
agent must quote (the sandbox agent does, on the partner's word) and accepts the quote; then the
sandbox airline moves the flight of a second booking and the partner lets the rescheduling window
pass at once, so the default alternative applies. Python's standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

DEFAULT_BASE = "http://127.0.0.1:8080"
SANDBOX_ADMIN_KEY = "sandbox-admin-key"
# How long the tour waits for a flow to move (it polls the flow's GET); far above what the sandbox takes.
MOVE_BOUND_S = 60.0


class TourFailed(Exception):
    pass


class Partner:
    """Calls the gateway with one key, printing each call."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, expect: int = 200,
             accept: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json", "Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, text = answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        print(f"  {method} {path} → {status}")
        if status != expect:
            raise TourFailed(f"{method} {path} answered {status}, not {expect}: {text}")
        return json.loads(text) if accept == "application/json" else text

    def until(self, path: str, moved: Any) -> dict[str, Any]:
        """The flow at ``path`` once ``moved(flow)`` holds, read again every 0.2 s (at most MOVE_BOUND_S)."""
        deadline = time.monotonic() + MOVE_BOUND_S
        while True:
            flow: dict[str, Any] = self.call("GET", path)
            if moved(flow):
                return flow
            if time.monotonic() > deadline:
                raise TourFailed(f"{path} is still {flow['status']} after {MOVE_BOUND_S:.0f} s")
            time.sleep(0.2)


def booking(days_ahead: int) -> dict[str, Any]:
    """A flight (automatic policy, changeable) and a hotel (manual policy: an agent quotes)."""
    departure = (datetime.now(timezone.utc) + timedelta(days=days_ahead)).replace(hour=8, minute=0, second=0, microsecond=0)
    check_in = departure.date()
    return {
        "travellers": [{"traveller_id": "T1", "name": "Ada Lovelace"}],
        "products": [
            {"kind": "flight", "carrier": "ZZ",
             "segments": [{"origin": "MAD", "destination": "CDG", "departure": departure.isoformat(),
                           "arrival": (departure + timedelta(hours=2, minutes=5)).isoformat(), "flight_number": "ZZ101"}],
             "price": {"amount": "240.00", "currency": "EUR"}, "vat_rate": "0.081",
             "cancellation_policy": {"mode": "automatic", "tiers": [{"hours_before_start": 168, "penalty_percent": "50"},
                                                                     {"hours_before_start": 24, "penalty_percent": "100"}]},
             "change_policy": {"changeable": True, "change_fee": {"amount": "30.00", "currency": "EUR"}}},
            {"kind": "hotel", "hotel": "Hotel Lutetia", "check_in": check_in.isoformat(),
             "check_out": (check_in + timedelta(days=3)).isoformat(),
             "price": {"amount": "600.00", "currency": "EUR"}, "vat_rate": "0.10", "cancellation_policy": {"mode": "manual"}},
        ],
    }


def money(amount: dict[str, str] | None) -> str:
    return "—" if amount is None else f"{amount['amount']} {amount['currency']}"


def tour(base: str, admin_key: str) -> None:
    print("1. The admin creates a partner (its key and webhook secret are shown once).")
    created = Partner(base, admin_key).call("POST", "/v1/admin/partners", {"name": "Acme Travel"}, expect=201)
    partner = Partner(base, created["api_key"])
    print(f"   partner {created['partner_id']}")

    print("2. The partner books a flight and a hotel in the sandbox supplier, and reads the reservation back.")
    reservation = partner.call("POST", "/v1/sandbox/reservations", booking(days_ahead=5), expect=201)
    reservation_id = reservation["reservation_id"]
    flight_id, hotel_id = (product["product_id"] for product in reservation["products"])
    partner.call("GET", f"/v1/reservations/{reservation_id}")
    print(f"   {reservation_id}: flight {flight_id}, hotel {hotel_id}")

    print("3. It cancels the flight: allowance → quote → cancel, at the automatic penalty.")
    allowance = partner.call("GET", f"/v1/products/{flight_id}/cancellation-allowance")
    quote = partner.call("POST", f"/v1/products/{flight_id}/cancellation-quotes", {}, expect=201)
    cancelled = partner.call("POST", f"/v1/products/{flight_id}/cancellations", {"quote_id": quote["quote_id"]})
    print(f"   allowance {allowance['allowance']}; {cancelled['code']} {cancelled['status']}: "
          f"penalty {money(cancelled['penalty'])}, refund {money(cancelled['refund'])}")

    print("4. The money: the payments journal (the fare, the refund; also as CSV) and the refund the cancellation posted.")
    payments = partner.call("GET", f"/v1/payments?reservation_id={reservation_id}")
    partner.call("GET", f"/v1/payments?reservation_id={reservation_id}", accept="text/csv")
    refunds = partner.call("GET", f"/v1/refunds?reservation_id={reservation_id}")
    print(f"   {len(payments['items'])} journal entries; refunds: "
          + ", ".join(f"{r['number']}: {money(r['amount'])} {r['state']}" for r in refunds["items"]))

    print("5. It cancels the hotel: an agent must quote. The sandbox agent quotes 100.00 EUR; the partner accepts.")
    quote = partner.call("POST", f"/v1/products/{hotel_id}/cancellation-quotes", {}, expect=201)
    manual = partner.call("POST", f"/v1/products/{hotel_id}/cancellations", {"quote_id": quote["quote_id"]}, expect=202)
    code = manual["code"]
    quoted = partner.call("POST", f"/v1/sandbox/cancellations/{code}/agent-quote",
                          {"penalty": {"amount": "100.00", "currency": "EUR"}, "note": "late cancellation fee"})
    print(f"   {code} {quoted['status']}: penalty {money(quoted['penalty'])}, refund {money(quoted['refund'])}, "
          f"decide by {quoted['decision_deadline']}")
    accepted = partner.call("PATCH", f"/v1/cancellations/{code}", {"decision": "accept"})
    print(f"   {code} {accepted['status']}")

    print("6. The sandbox airline moves the flight of another booking; the partner lets its window pass now.")
    second = partner.call("POST", "/v1/sandbox/reservations", booking(days_ahead=30), expect=201)
    moved = partner.call("POST", "/v1/sandbox/rescheduling/mock",
                         {"product_id": second["products"][0]["product_id"], "kind": "time_change", "delay_minutes": 90},
                         expect=202)
    rescheduling = f"/v1/reschedulings/{moved['code']}"
    partner.until(rescheduling, lambda flow: flow["status"] == "awaiting_partner_action")
    advanced = partner.call("POST", f"/v1/sandbox/flows/{moved['code']}/advance", expect=202)
    final = partner.until(rescheduling, lambda flow: flow["status"] != "awaiting_partner_action")
    print(f"   {moved['code']}: {advanced['deadline']} passed; {final['status']} with {final['alternative_id']}")

    print("7. Every event the partner was sent, in order (the pull feed).")
    events = partner.call("GET", "/v1/events?limit=200")
    for event in events["items"]:
        print(f"   {event['type']:<28} {event['data'].get('code') or event['data'].get('flow_code')}")
    if final["status"] != "auto_accepted" or accepted["status"] != "cancelled" or cancelled["status"] != "cancelled":
        raise TourFailed("a flow did not end where the tour expects")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"the gateway (default {DEFAULT_BASE})")
    parser.add_argument("--admin-key", default=SANDBOX_ADMIN_KEY, help="the admin key (the sandbox's by default)")
    args = parser.parse_args(argv)
    try:
        tour(args.base, args.admin_key)
    except (TourFailed, urllib.error.URLError) as failed:
        print(f"tour stopped: {failed}", file=sys.stderr)
        return 1
    print("The tour is complete.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
