"""``GET /metrics`` after real traffic (docs/operations.md#metrics): requests by route template, method and
status with a latency histogram and never a raw id in a label; flows started and ended by kind and
outcome; the agent's queue; trigger deliveries by outcome."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from domain.codes import FlowKind, new_flow_code
from domain.flow_info import FlowRecord
from store.repositories import Store
from tests.api.conftest import ADMIN, Actor, cancel_with_a_quote, flight, hotel, new_partner, reservation_body
from tests.workflows.receiver import WebhookReceiver
from workflows.trigger_delivery import trigger_workflow_id

BOUND_S = 60
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    # A delivery to a webhook that always fails gives up quickly, so the test sees a failed one.
    return {"AFTERSALES_WEBHOOK_RETRY_FOR": "3s", "AFTERSALES_SYNC_WAIT": "20s"}


async def scrape(http: TestClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name].get(tuple(sorted(labels.items())), 0.0)


async def cancel(http: TestClient, who: Actor, product_id: str) -> dict:  # type: ignore[type-arg]
    response = await cancel_with_a_quote(http, who, product_id)
    assert response.status in (200, 202), await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def test_metrics_after_traffic(http: TestClient, temporal_env: WorkflowEnvironment) -> None:
    before = await scrape(http)
    partner = await new_partner(http, "Measured")
    async with WebhookReceiver(secret=partner.body["webhook_secret"]) as good, \
            WebhookReceiver(secret="", failures=None) as broken:
        assert (await http.put("/v1/partner/webhook", json={"url": good.url}, headers=partner.headers)).status == 200
        booked = await (await http.post("/v1/sandbox/reservations", json=reservation_body(flight(), hotel()),
                                        headers=partner.headers)).json()
        flight_id, hotel_id = (p["product_id"] for p in booked["products"])
        for _ in range(3):
            assert (await http.get(f"/v1/reservations/{booked['reservation_id']}", headers=partner.headers)).status == 200
        assert (await http.get("/v1/reservations/RES-NOPE", headers=partner.headers)).status == 404
        assert (await http.get("/v1/no/such/route")).status == 404

        done = await cancel(http, partner, flight_id)
        assert done["status"] == "cancelled"
        manual = await cancel(http, partner, hotel_id)
        assert manual["status"] == "awaiting_agent_quote"
        delivered = (await (await http.get("/v1/events", headers=partner.headers)).json())["items"][0]
        assert await asyncio.wait_for(
            temporal_env.client.get_workflow_handle(trigger_workflow_id(delivered["id"])).result(), BOUND_S) == "delivered"

        # A partner whose webhook always fails: its event's delivery ends failed after the retry window.
        failing = await new_partner(http, "Broken hook", webhook_url=broken.url)
        booked = await (await http.post("/v1/sandbox/reservations", json=reservation_body(flight()),
                                        headers=failing.headers)).json()
        assert (await cancel(http, failing, booked["products"][0]["product_id"]))["status"] == "cancelled"
        lost = (await (await http.get("/v1/events", headers=failing.headers)).json())["items"][0]
        assert await asyncio.wait_for(
            temporal_env.client.get_workflow_handle(trigger_workflow_id(lost["id"])).result(), BOUND_S) == "failed"

    after = await scrape(http)

    def grew(name: str, by: float = 1, **labels: str) -> None:
        assert value(after, name, **labels) - value(before, name, **labels) >= by, (name, labels)

    # Requests: by route template, method and status, with a latency histogram.
    grew("aftersales_http_requests_total", 3, route="/v1/reservations/{reservation_id}", method="GET", status="200")
    grew("aftersales_http_requests_total", 1, route="/v1/reservations/{reservation_id}", method="GET", status="404")
    grew("aftersales_http_requests_total", 2, route="/v1/products/{product_id}/cancellations", method="POST", status="200")
    grew("aftersales_http_requests_total", 1, route="/v1/products/{product_id}/cancellations", method="POST", status="202")
    grew("aftersales_http_requests_total", 1, route="unmatched", method="GET", status="404")
    grew("aftersales_http_request_duration_seconds_count", 4, route="/v1/reservations/{reservation_id}", method="GET")
    assert value(after, "aftersales_http_request_duration_seconds_bucket",
                 route="/v1/reservations/{reservation_id}", method="GET", le="+Inf") >= 4
    labels = {v for series in after.values() for key in series for _, v in key}
    assert not [v for v in labels if v.startswith(("RES-", "PRD-", "CAN-", "ptn_", "evt_", "qt_"))], labels

    # Flows, the agent's queue and deliveries, as the database has them.
    grew("aftersales_flows_started_total", 3, kind="cancellation")
    grew("aftersales_flows_ended_total", 2, kind="cancellation", outcome="cancelled")
    assert value(after, "aftersales_flows_in_progress", kind="cancellation", status="awaiting_agent_quote") >= 1
    assert value(after, "aftersales_agent_queue_depth") >= 1
    assert value(after, "aftersales_agent_queue_oldest_seconds") >= 0
    assert value(after, "aftersales_flows_started_total", kind="special_request") >= 0  # every kind is listed
    grew("aftersales_trigger_deliveries_total", 1, outcome="delivered")
    grew("aftersales_trigger_deliveries_total", 1, outcome="failed")
    grew("aftersales_trigger_delivery_attempts_total", 2)
    assert value(after, "aftersales_store_counts_up") == 1
    assert ("kind", "special_request") in {key[0] for key in after["aftersales_flows_started_total"]}

    # No auth on /metrics, but an unknown key is still refused (as on every route).
    assert (await http.get("/metrics", headers={"Authorization": "Bearer nope"})).status == 401
    assert (await http.get("/metrics", headers=ADMIN)).status == 200


async def test_flows_waiting_past_their_deadline_are_counted(http: TestClient, store: Store) -> None:
    """A rescheduling whose choice window closed but whose default is not recorded yet counts as past its
    deadline, and how far past shows in the oldest's age (both databases)."""
    before = await scrape(http)
    overdue = datetime.now(timezone.utc) - timedelta(minutes=5)
    code = new_flow_code(FlowKind.RESCHEDULING, random.Random())
    record = FlowRecord(code=code, kind=FlowKind.RESCHEDULING, product_id=f"PRD-{code[3:]}", reservation_id="RES-1",
                        partner_id="ptn_1", status="awaiting_partner_action", terminal=False,
                        info={"code": code, "status": "awaiting_partner_action", "decision_deadline": overdue.isoformat()},
                        at=datetime.now(timezone.utc), deadline=overdue)
    assert await store.flows.open(record, {})
    after = await scrape(http)
    assert value(after, "aftersales_flows_past_deadline", kind="rescheduling") >= (
        value(before, "aftersales_flows_past_deadline", kind="rescheduling") + 1)
    assert value(after, "aftersales_flows_past_deadline_oldest_seconds") >= 300
    assert ("kind", "special_request") in {key[0] for key in after["aftersales_flows_past_deadline"]}  # every kind
