"""docs/api.md#errors lists every problem code the gateway can answer with."""

from __future__ import annotations

import re
from pathlib import Path

from api.problems import REFUSALS

ROOT = Path(__file__).resolve().parents[2]


def test_every_problem_code_is_in_the_errors_table() -> None:
    source = "\n".join(path.read_text() for folder in ("api", "services") for path in (ROOT / folder).glob("*.py"))
    raised = set(re.findall(r'Problem\(\s*\w*\s*\d*,?\s*"([a-z_]+)"', source))
    raised |= set(re.findall(r'\d{3}: "([a-z_]+)"', source))  # the HTTP layer's status → code tables
    # A refusal counts once something raises it (api/problems.py maps some that nothing raises yet).
    users = "\n".join(path.read_text() for folder in ("api", "services", "workflows", "domain") for path in (ROOT / folder).glob("*.py")
                      if path.name != "refusals.py")
    raised |= {code for refusal, (_status, code) in REFUSALS.items() if f"Refusal.{refusal.name}" in users}
    docs = (ROOT / "docs" / "api.md").read_text()
    errors = docs[docs.index("## Errors"):docs.index("## Idempotency")]
    documented = set(re.findall(r"\| \d{3}|other \| `([a-z_]+)`", errors)) | set(re.findall(r"\| `([a-z_]+)` \|", errors))
    assert raised >= {"not_found", "idempotency_key_in_use", "temporal_unavailable", "request_timeout"}
    assert raised - documented == set()
