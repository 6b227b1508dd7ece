"""Where a webhook may be sent, checked when it is registered and again at every delivery
(docs/triggers.md#where-triggers-may-go).

The delivery resolves the host once, through a resolver that tests replace (the seam), checks
every address, and then connects to the address it checked: a name that resolves to a public
address for the check and to 127.0.0.1 for the connection (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from config.settings import Settings
from domain.webhook_urls import WebhookPolicy, address_refusal, ip_literal, url_refusal

# host, port → the addresses the host resolves to.
Resolver = Callable[[str, int], Awaitable[list[str]]]
RESOLVE_TIMEOUT_S = 5.0


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def webhook_policy(settings: Settings) -> WebhookPolicy:
    if settings.sandbox:
        return WebhookPolicy.sandbox()
    return WebhookPolicy.production(allow_http=settings.webhook_allow_http)


class WebhookRefused(Exception):
    """The URL may not receive triggers; ``str()`` says why, for a 422 or an attempt's record."""


@dataclass(frozen=True)
class Destination:
    """A vetted webhook: connect to ``address``, present ``host`` (Host header and TLS name)."""

    url: str
    host: str
    port: int
    address: str


class WebhookGuard:
    def __init__(self, policy: WebhookPolicy, resolver: Resolver = system_resolver, resolve_at_registration: bool = True):
        self.policy = policy
        self._resolver = resolver
        self._resolve_at_registration = resolve_at_registration

    @classmethod
    def for_settings(cls, settings: Settings, resolver: Resolver = system_resolver) -> WebhookGuard:
        # The sandbox checks what a URL says at registration but resolves nothing (its partners try
        # out names that do not exist yet); every delivery resolves and checks, in every mode.
        return cls(webhook_policy(settings), resolver, resolve_at_registration=not settings.sandbox)

    async def _addresses(self, host: str, port: int) -> list[str]:
        literal = ip_literal(host)
        if literal is not None:
            return [str(literal)]
        return await asyncio.wait_for(self._resolver(host, port), RESOLVE_TIMEOUT_S)

    def _check(self, addresses: list[str]) -> None:
        if not addresses:
            raise WebhookRefused("the host resolves to no address")
        for address in addresses:
            literal = ip_literal(address)
            reason = "the host resolves to something that is not an address" if literal is None else (
                address_refusal(literal, self.policy)
            )
            if reason is not None:
                # One refused address refuses the URL: whoever controls the name picks which one we use.
                raise WebhookRefused(reason)

    async def check_registration(self, url: str) -> None:
        """Raise :class:`WebhookRefused` for a URL that may not be registered.

        A name that does not resolve (yet) is accepted: each delivery resolves it again.
        """
        reason = url_refusal(url, self.policy)
        if reason is not None:
            raise WebhookRefused(reason)
        if not self._resolve_at_registration:
            return
        parts = urlsplit(url)
        try:
            addresses = await self._addresses(parts.hostname or "", parts.port or _default_port(parts.scheme))
        except (OSError, TimeoutError):
            return
        self._check(addresses)

    async def destination(self, url: str) -> Destination:
        """The vetted address to send to, or :class:`WebhookRefused` (no request is then made)."""
        reason = url_refusal(url, self.policy)
        if reason is not None:
            raise WebhookRefused(reason)
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or _default_port(parts.scheme)
        try:
            addresses = await self._addresses(host, port)
        except (OSError, TimeoutError) as exc:
            raise WebhookRefused(f"the host does not resolve ({type(exc).__name__})") from None
        self._check(addresses)
        return Destination(url=url, host=host, port=port, address=addresses[0])


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
