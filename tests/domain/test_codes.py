from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.codes import FlowKind, new_flow_code, new_id, parse_flow_code


def test_flow_kinds_and_prefixes() -> None:
    assert {k.value: k.prefix for k in FlowKind} == {
        "cancellation": "CAN",
        "change": "CF",
        "rescheduling": "RS",
        "special_request": "SR",
    }
    assert FlowKind("cancellation") is FlowKind.CANCELLATION
    assert f"{FlowKind.SPECIAL_REQUEST}" == "special_request"


@pytest.mark.parametrize("kind", list(FlowKind))
def test_new_flow_code_format(kind: FlowKind) -> None:
    code = new_flow_code(kind, random.Random(1))
    assert re.fullmatch(rf"{kind.prefix}-[0-9A-Z]{{8}}", code)
    assert parse_flow_code(code) is kind


def test_new_flow_code_is_deterministic_for_a_seeded_rng() -> None:
    first = [new_flow_code(FlowKind.CANCELLATION, rng) for rng in [random.Random(42)] * 5]
    second = [new_flow_code(FlowKind.CANCELLATION, rng) for rng in [random.Random(42)] * 5]
    assert first == second
    assert len(set(first)) == 5
    same_seed_change = new_flow_code(FlowKind.CHANGE, random.Random(42))
    assert same_seed_change[3:] == new_flow_code(FlowKind.CANCELLATION, random.Random(42))[4:]
    assert new_flow_code(FlowKind.CHANGE, random.Random(1)) != new_flow_code(FlowKind.CHANGE, random.Random(2))


@given(st.sampled_from(list(FlowKind)), st.integers())
def test_generated_codes_always_parse_back(kind: FlowKind, seed: int) -> None:
    assert parse_flow_code(new_flow_code(kind, random.Random(seed))) is kind


@pytest.mark.parametrize(
    "text",
    [
        "",
        "CAN-",
        "CAN-7K2Q9X0",
        "CAN-7K2Q9X0B1",
        "can-7K2Q9X0B",
        "CAN-7k2q9x0b",
        "CAN_7K2Q9X0B",
        "XX-7K2Q9X0B",
        "CANX-7K2Q9X0B",
        " CAN-7K2Q9X0B",
        "CAN-7K2Q9X0B\n",
        "CAN-7K2Q9X0Ö",
        "CAN-7K2Q9X0-",
    ],
)
def test_parse_flow_code_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="not a flow code"):
        parse_flow_code(text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("CAN-7K2Q9X0B", FlowKind.CANCELLATION),
        ("CF-00000000", FlowKind.CHANGE),
        ("RS-ZZZZZZZZ", FlowKind.RESCHEDULING),
        ("SR-A1B2C3D4", FlowKind.SPECIAL_REQUEST),
    ],
)
def test_parse_flow_code(text: str, kind: FlowKind) -> None:
    assert parse_flow_code(text) is kind


def test_parse_flow_code_refuses_non_strings() -> None:
    with pytest.raises(ValueError):
        parse_flow_code(None)  # type: ignore[arg-type]


def test_new_id() -> None:
    value = new_id("evt_", random.Random(7))
    assert re.fullmatch(r"evt_[a-z2-7]{20}", value)
    assert value == new_id("evt_", random.Random(7))
    assert value != new_id("evt_", random.Random(8))
    ids = {new_id("q_", rng) for rng in [random.Random(3)] * 1000}
    assert len(ids) == 1000
