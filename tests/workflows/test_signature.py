"""The trigger signature (docs/triggers.md) as a receiver checks it."""

from __future__ import annotations

import hashlib
import hmac

from domain.signature import sign, verify

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"cancellation.completed"}'
NOW = 1_790_000_000


def test_header_is_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"t={NOW},v1={expected}"


def test_signed_body_verifies_within_tolerance() -> None:
    assert verify(SECRET, sign(SECRET, NOW, BODY), BODY, 300, NOW + 299)


def test_tampered_body_wrong_secret_stale_or_malformed_headers_do_not_verify() -> None:
    header = sign(SECRET, NOW, BODY)
    assert not verify(SECRET, header, BODY + b" ", 300, NOW)
    assert not verify("another", header, BODY, 300, NOW)
    assert not verify(SECRET, header, BODY, 300, NOW + 301)
    assert not verify(SECRET, header, BODY, 300, NOW - 301)
    for malformed in ("", "v1=abc", f"t={NOW}", "t=x,v1=y", header.replace("v1=", "v0=")):
        assert not verify(SECRET, malformed, BODY, 300, NOW)


def test_any_of_several_signatures_verifies_during_secret_rotation() -> None:
    old = sign("old-secret", NOW, BODY).split(",")[1]
    assert verify(SECRET, f"{sign(SECRET, NOW, BODY)},{old}", BODY, 300, NOW)
