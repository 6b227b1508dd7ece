"""Every id and code has the shape docs/api.md#conventions gives it, however it is drawn."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.codes import (
    AGENT_ID,
    EVENT_ID,
    ITINERARY_ID,
    KEY_ID,
    PARTNER_ID,
    PAYMENT_ID,
    PRODUCT_ID,
    QUOTE_ID,
    REFUND_ID,
    RESERVATION_ID,
    SANDBOX_CHANGE_ID,
    SUPPLIER_ID,
    FlowKind,
    IdShape,
    new_flow_code,
    parse_flow_code,
)

API_DOC = Path(__file__).parents[2] / "docs" / "api.md"

# The shapes as docs/api.md writes them (its "Identifiers" table, and its examples for supplier and key ids).
DOCUMENTED: dict[IdShape, str] = {
    RESERVATION_ID: r"RES-[0-9A-Z]{10}",
    PRODUCT_ID: r"PRD-[0-9A-Z]{10}",
    PARTNER_ID: r"ptn_[0-9a-f]{16}",
    AGENT_ID: r"agt_[0-9a-f]{16}",
    SUPPLIER_ID: r"sup_[0-9a-f]{16}",
    KEY_ID: r"key_[0-9a-f]{16}",
    QUOTE_ID: r"qt_[0-9a-f]{20}",
    ITINERARY_ID: r"itn_[0-9a-f]{20}",
    SANDBOX_CHANGE_ID: r"sbx_[0-9a-f]{20}",
    EVENT_ID: r"evt_[a-z2-7]{20}",
    PAYMENT_ID: r"pay_[a-z2-7]{20}",
    REFUND_ID: r"rfd_[a-z2-7]{20}",
    **{kind.code_shape: rf"{kind.prefix}-[0-9A-Z]{{8}}" for kind in FlowKind},
}
SHAPES = list(DOCUMENTED)


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


def test_the_documented_examples_fit_their_shapes() -> None:
    """Every id docs/api.md shows fits the shape of its prefix (so it parses where ids are parsed),
    and every shape is shown."""
    examples = re.findall(r"\b(RES-|PRD-|CAN-|CF-|RS-|SR-|[a-z]{2,3}_)([0-9A-Za-z]{8,20})\b", API_DOC.read_text())
    by_prefix = {shape.prefix: shape for shape in SHAPES}
    shown = set()
    for prefix, body in examples:
        shape = by_prefix.get(prefix)
        if shape is not None:
            assert shape.fits(prefix + body) and re.fullmatch(DOCUMENTED[shape], prefix + body), prefix + body
            shown.add(shape)
    assert shown == set(SHAPES)


@given(st.sampled_from(SHAPES), st.integers())
def test_every_id_drawn_from_a_generator_has_its_documented_shape(shape: IdShape, seed: int) -> None:
    drawn = shape.new(random.Random(seed))
    assert re.fullmatch(DOCUMENTED[shape], drawn) and shape.fits(drawn)
    assert drawn == shape.new(random.Random(seed))  # a replay, or a retry under the same key, draws it again


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.prefix)
def test_every_secure_id_has_its_documented_shape_and_every_character_is_drawn(shape: IdShape) -> None:
    """2,000 secure ids: all distinct, each of the documented shape, and every character of the
    alphabet turns up at every position (a number of too few bits would leave the last ones fixed)."""
    ids = [shape.secure() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(DOCUMENTED[shape], value) for value in ids)
    for position in range(len(shape.prefix), len(ids[0])):
        assert {value[position] for value in ids} == set(shape.alphabet), position


def test_ids_are_drawn_as_they_always_were() -> None:
    """A retry that spans an upgrade, or a workflow replayed by a newer worker, draws the ids its
    first attempt drew: these are what one seeded generator drew before ids had one module."""
    rng = random.Random(2024)
    drawn = [new_flow_code(FlowKind.CANCELLATION, rng), RESERVATION_ID.new(rng), PRODUCT_ID.new(rng),
             QUOTE_ID.new(rng), EVENT_ID.new(rng)]
    assert drawn == ["CAN-UBJCQGYF", "RES-VMQXDJYLX4", "PRD-DT9YDQ3MQT", "qt_34acab6adda6d761708a",
                     "evt_2hvop5ximx7jqyvv5kiv"]


@given(st.sampled_from(SHAPES), st.text(max_size=30))
def test_a_shape_fits_nothing_else(shape: IdShape, text: str) -> None:
    assert shape.fits(text) == bool(re.fullmatch(DOCUMENTED[shape], text))
    assert shape.fits(shape.prefix + text) == bool(re.fullmatch(DOCUMENTED[shape], shape.prefix + text))


@pytest.mark.parametrize("alphabet", ["0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz234567"])
def test_a_secure_id_spells_every_character_equally_often(alphabet: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fed every byte value once, a secure id uses each character of its alphabet equally often: the
    byte values that would favour the first characters are dropped."""
    fair = 256 - 256 % len(alphabet)
    shape = IdShape("x_", alphabet, fair)
    monkeypatch.setattr("domain.codes.secrets.token_bytes", lambda n: bytes(range(256))[:n].ljust(n, b"\xff"))
    spelt = shape.secure()[2:]
    assert {spelt.count(c) for c in alphabet} == {fair // len(alphabet)}


def test_a_secure_id_reads_again_when_too_many_bytes_were_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = iter([b"\xff" * 18, bytes(range(18))])
    monkeypatch.setattr("domain.codes.secrets.token_bytes", lambda n: next(reads))
    assert RESERVATION_ID.secure() == "RES-0123456789"
