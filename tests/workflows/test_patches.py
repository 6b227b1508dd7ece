"""The table of live patches (docs/workflows.md#live-patches) stays true to the code and to the
recorded histories: a patch nobody wrote down, or a pre-patch history nobody accounts for, fails here."""

from __future__ import annotations

import re
from pathlib import Path

from tests.workflows.record_histories import HISTORIES
from workflows import patches

LIVE_PATCHES = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"
PRE_PATCH = re.compile(r"_v\d+$")


def _table() -> str:
    text = LIVE_PATCHES.read_text()
    return text[text.index("### Live patches"):]


def _expanded(table: str) -> str:
    """The table with each ``name_{a,b}_v1`` written out as ``name_a_v1 name_b_v1``."""
    def expand(match: re.Match[str]) -> str:
        return " ".join(f"{match['head']}{choice}{match['tail']}" for choice in match["choices"].split(","))
    return re.sub(r"(?P<head>[\w]+)\{(?P<choices>[\w,]+)\}(?P<tail>[\w]*)", expand, table)


def test_every_patch_id_is_in_the_table() -> None:
    ids = [value for name, value in vars(patches).items() if name.isupper() and isinstance(value, str)]
    assert ids
    missing = [patch_id for patch_id in ids if f"| `{patch_id}` |" not in _table()]
    assert missing == []


def test_every_pre_patch_history_is_in_the_table() -> None:
    pre_patch = sorted(path.stem for path in HISTORIES.glob("*.json") if PRE_PATCH.search(path.stem))
    named = set(re.findall(r"\b\w+_v\d+\b", _expanded(_table())))
    assert [name for name in pre_patch if name not in named] == []
