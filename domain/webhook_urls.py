"""Which webhook URLs and addresses Aftersales refuses to send triggers to (docs/triggers.md#where-triggers-may-go).

A partner chooses where our signed POSTs go, so a webhook URL is a way to make the service send
requests inside its own network (SSRF). In production a URL must be ``https`` (an operator may allow
``http``), carry no credentials, and every address its host resolves to must be globally routable:
loopback, private, shared, link-local (cloud metadata), multicast, reserved and unspecified
addresses are refused, however they are written. The sandbox also accepts ``http`` and loopback
receivers, so a developer can receive triggers on their own machine.

Pure rules: resolving names and connecting belong to the callers.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that are never on the public internet, whatever a resolver says about them.
LOOPBACK_NAMES = ("localhost",)
PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".intranet", ".lan", ".corp")
# A last label made of digits (or 0x…): an IPv4 address in a form a resolver reads (2130706433, 0x7f.1).
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Networks in private use (RFC 1918, shared address space RFC 6598, unique local IPv6 RFC 4193);
# any other address that is not globally routable is reported as reserved.
_PRIVATE = tuple(
    ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


@dataclass(frozen=True)
class WebhookPolicy:
    allow_http: bool
    allow_loopback: bool

    @classmethod
    def sandbox(cls) -> WebhookPolicy:
        return cls(allow_http=True, allow_loopback=True)

    @classmethod
    def production(cls, allow_http: bool = False) -> WebhookPolicy:
        return cls(allow_http=allow_http, allow_loopback=False)


def url_refusal(url: str, policy: WebhookPolicy) -> str | None:
    """Why ``url`` may not be a webhook before any name is resolved; None when it may."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    schemes = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in schemes:
        return f"the scheme must be {' or '.join(schemes)}"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "credentials in the URL are refused: authenticate the request with its signature"
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "the URL has no host"
    if port == 0:
        return "port 0 is not a port to send to"
    literal = ip_literal(host)
    if literal is not None:
        return address_refusal(literal, policy)
    if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        return "a numeric host must be a dotted-quad IPv4 address or a bracketed IPv6 address"
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return None if policy.allow_loopback else "the host is a loopback name"
    if host.endswith(PRIVATE_SUFFIXES):
        return "the host is a private-use name, not reachable from the internet"
    return None


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _embedded(address: IPAddress) -> list[IPAddress]:
    """Any IPv4 address ``address`` carries (mapped, 6to4, Teredo, NAT64), then the address itself: each must pass."""
    found: list[IPAddress] = []
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [*found, address]


def address_refusal(address: IPAddress, policy: WebhookPolicy) -> str | None:
    """Why a webhook may not be sent to ``address``; None when it may."""
    for candidate in _embedded(address):
        reason = _refusal_of(candidate, policy)
        if reason is not None:
            return f"the host resolves to {reason} ({address})"
    return None


def _refusal_of(address: IPAddress, policy: WebhookPolicy) -> str | None:
    if address.is_loopback:
        return None if policy.allow_loopback else "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if any(address.version == net.version and address in net for net in _PRIVATE):
        return "a private address"
    if address.is_reserved or address.is_private or not address.is_global:
        return "a reserved address"
    return None
