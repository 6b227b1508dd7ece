"""The typed contract (docs/api.md#get-v1openapijson): no answer of /v1/openapi.json leaves a value
untyped, every time says ``format: date-time``, the ``webhooks`` section has one schema per event type,
and the check of every event the suite makes (tests/contract/event_collector.py) is wired and can fail."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from domain.cancellation_flow import CancellationInfo
from domain.codes import FlowKind
from domain.event_catalogue import CATALOGUE, EVENT_MODELS, EVENT_TYPES
from domain.flow_info import FlowRecord, event_body
from domain.money import Money
from store.repositories import open_store
from tests.contract import event_collector
from tests.contract.openapi_document import answer_schemas, document, resolve, untyped


def test_no_answer_leaves_a_value_untyped() -> None:
    schemas = list(answer_schemas())
    found = [problem for where, schema in schemas for problem in untyped(schema, where)]

    assert not found, "\n".join(found)
    assert len(schemas) > 60  # every answer of every route, and every webhook, was looked at


@pytest.mark.parametrize(("schema", "problem"), [
    ({}, "a value of any type"),
    ({"type": "object"}, "an object with no declared properties"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True}, "allows any other property"),
    ({"type": "object", "properties": {"created_at": {"type": "string"}}}, "a time without format: date-time"),
    ({"type": "object", "properties": {"due": {"anyOf": [{"type": "null"}, {"type": "array", "items": {}}]}}}, "any type"),
])
def test_the_walk_finds_each_kind_of_untyped_value(schema: dict[str, object], problem: str) -> None:
    found = list(untyped(schema, "answer"))

    assert found and problem in found[0]


def test_the_webhooks_section_has_one_schema_per_event_type() -> None:
    webhooks = document()["webhooks"]

    assert set(webhooks) == set(EVENT_TYPES) and len(CATALOGUE) == len(EVENT_TYPES)
    for name, operations in webhooks.items():
        body = resolve(operations["post"]["requestBody"]["content"]["application/json"]["schema"])
        assert body["properties"]["type"]["const"] == name
        assert body["required"] == list(EVENT_MODELS[name].model_json_schema()["required"])
        assert resolve(body["properties"]["data"])["title"] == EVENT_TYPES[name].data.__name__
        assert set(EVENT_TYPES[name].useful_fields) <= set(EVENT_TYPES[name].data.model_fields)


def _cancelled(code: str) -> CancellationInfo:
    return CancellationInfo(code=code, product_id="PRD-1", reservation_id="RES-1", partner_id="ptn_1", status="cancelled",
                            resolution="automatic", paid=Money.of("240", "EUR"), penalty=Money.of("120", "EUR"),
                            refund=Money.of("120", "EUR"))


async def test_what_the_store_writes_to_the_outbox_is_collected(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    partner, _key = await store.accounts.create_partner("Collected", None)
    event_id = "evt_" + "a" * 20
    # A rejection: a transition that moves no money, so the flow needs no product in this store.
    rejected = _cancelled("CAN-COLLECT1").model_copy(update={"partner_id": partner.partner_id, "status": "rejected",
                                                              "resolution": "manual", "decision": "reject"})
    record = FlowRecord.of(rejected, FlowKind.CANCELLATION, datetime.now(timezone.utc), event_id, "cancellation.rejected")
    before = len(event_collector.COLLECTED)
    try:
        await store.flows.record_flow(record)
    finally:
        await store.close()

    [(where, body)] = event_collector.COLLECTED[before:]
    assert where == "the store's outbox" and body["id"] == event_id and body["data"]["refund"]["amount"] == "120.00"
    assert event_collector.problems([(where, body)]) == []


def test_the_check_fails_on_an_event_its_schema_refuses() -> None:
    good = event_body("evt_" + "b" * 20, "cancellation.completed", datetime.now(timezone.utc),
                      _cancelled("CAN-COLLECT2").model_dump(mode="json"))
    as_float = {**good, "data": {**good["data"], "refund": {"amount": 120.0, "currency": "EUR"}}}
    no_time = {**good, "created_at": "yesterday"}
    unknown = {**good, "type": "cancellation.teleported"}

    found = event_collector.problems([("test", good), ("test", as_float), ("test", no_time), ("test", unknown)])

    assert len(found) == 3, found
    assert "data.refund" in found[0] and "created_at" in found[1] and "not in the webhooks section" in found[2]
