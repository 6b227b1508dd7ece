"""Which webhook URLs and addresses are refused (docs/triggers.md#where-triggers-may-go): every
address class, however it is written, in production; loopback and http only in the sandbox."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.webhook_urls import WebhookPolicy, address_refusal, url_refusal

PRODUCTION = WebhookPolicy.production()
SANDBOX = WebhookPolicy.sandbox()

REFUSED_ADDRESSES = {
    "127.0.0.1": "loopback", "127.8.9.10": "loopback", "::1": "loopback",
    "10.0.0.1": "private", "172.16.5.4": "private", "192.168.1.1": "private", "fd00::1": "private",
    "169.254.169.254": "link-local", "fe80::1": "link-local",
    "224.0.0.1": "multicast", "ff02::1": "multicast",
    "0.0.0.0": "unspecified", "::": "unspecified",
    "240.0.0.1": "reserved", "192.0.2.10": "reserved", "198.18.0.1": "reserved", "100.64.0.1": "private",
    # IPv4 inside IPv6: mapped, 6to4, NAT64.
    "::ffff:127.0.0.1": "loopback", "2002:a00:1::": "private", "64:ff9b::a9fe:a9fe": "link-local",
}


@pytest.mark.parametrize(("address", "kind"), REFUSED_ADDRESSES.items())
def test_every_non_public_address_is_refused_in_production(address: str, kind: str) -> None:
    reason = address_refusal(ipaddress.ip_address(address), PRODUCTION)
    assert reason is not None and kind in reason, reason


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_are_accepted(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), PRODUCTION) is None


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("http://partner.example/hooks", "scheme must be https"),
        ("ftp://partner.example/hooks", "scheme"),
        ("https://user:pass@partner.example/hooks", "credentials"),
        ("https://token@partner.example/hooks", "credentials"),
        ("https://127.0.0.1:8443/hooks", "loopback"),
        ("https://[::1]:8443/hooks", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.0.0.1/", "private"),
        ("https://0.0.0.0:8080/", "unspecified"),
        ("https://2130706433:8080/", "numeric host"),
        ("https://0x7f.1/", "numeric host"),
        ("https://localhost/hooks", "loopback name"),
        ("https://api.localhost/hooks", "loopback name"),
        ("https://metadata.google.internal/computeMetadata/v1/", "private-use name"),
        ("https://printer.local/", "private-use name"),
        ("https:///hooks", "no host"),
        ("https://partner.example:99999/", "not a valid URL"),
    ],
)
def test_refused_urls_in_production(url: str, part: str) -> None:
    reason = url_refusal(url, PRODUCTION)
    assert reason is not None and part in reason, reason


def test_production_may_allow_http_but_never_private_hosts() -> None:
    policy = WebhookPolicy.production(allow_http=True)
    assert url_refusal("http://partner.example/hooks", policy) is None
    assert url_refusal("http://10.0.0.1/hooks", policy) is not None


def test_the_sandbox_accepts_loopback_receivers_over_http_and_nothing_private() -> None:
    assert url_refusal("http://127.0.0.1:8000/hooks", SANDBOX) is None
    assert url_refusal("http://localhost:8000/hooks", SANDBOX) is None
    assert url_refusal("http://[::1]:8000/hooks", SANDBOX) is None
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://user:pw@127.0.0.1/", "http://0.0.0.0:80/"):
        assert url_refusal(url, SANDBOX) is not None, url


@given(st.ip_addresses())
def test_an_accepted_address_is_global_and_not_multicast(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if address_refusal(address, PRODUCTION) is None:
        assert address.is_global and not address.is_multicast
        mapped = getattr(address, "ipv4_mapped", None)
        assert mapped is None or mapped.is_global
