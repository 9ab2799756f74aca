"""The outbound host allow-list every HTTP tool goes through (SSRF guard).

A request may go only to a host that is allow-listed: the hosts of configured base URLs
and MCP server URLs, plus ``tool_hosts``. A host that resolves to a private, loopback,
link-local, reserved or multicast address is refused unless it is named in
``tool_hosts`` itself (configuring a base URL is not enough to reach the internal
network). Redirects are not followed. A host is resolved once per request and the
connection goes to the address that was checked (TLS still verifies the host's name), so
a DNS answer that changes between the check and the connect (DNS rebinding) cannot
steer a request to an internal address. What does not live here: authentication and
idempotency headers (the OpenAPI tools add them).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpx

from decisionops.agent.errors import ToolCallError

__all__ = ["HostGuard", "OutboundRefused"]


class OutboundRefused(ToolCallError):
    """A request to a host the allow-list does not admit; never retried."""

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message, retryable=False, **details)


class HostGuard:
    def __init__(self, configured: Iterable[str], explicit: Iterable[str]) -> None:
        self.explicit = {h.lower() for h in explicit}
        """``tool_hosts``: may also be private addresses."""
        self.allowed = {h.lower() for h in configured} | self.explicit

    def check(self, url: str | httpx.URL) -> str:
        """Raise ``OutboundRefused`` unless ``url``'s host may be reached; the address
        that was checked, to connect to."""
        target = httpx.URL(str(url))
        host = (target.host or "").lower()
        if target.scheme not in ("http", "https") or not host:
            raise OutboundRefused(f"outbound request refused: {target.scheme}://{host} is not "
                                  "an http(s) URL", host=host)
        if host not in self.allowed:
            raise OutboundRefused(f"outbound request refused: host {host!r} is not allow-listed "
                                  "(tool_hosts)", host=host)
        addresses = _addresses(host, target.port or (443 if target.scheme == "https" else 80))
        if host not in self.explicit:
            for address in addresses:
                if _internal(address):
                    raise OutboundRefused(
                        f"outbound request refused: {host!r} resolves to the internal address "
                        f"{address}; name the host in tool_hosts to allow it", host=host)
        return str(addresses[0])

    def pin(self, request: Any) -> None:
        """Check ``request`` and point it at the checked address: the URL gets the
        address, the ``Host`` header keeps the name, TLS gets the name for SNI and
        certificate verification."""
        host = request.url.host
        address = self.check(request.url)
        if address != host:
            request.url = request.url.copy_with(host=address)
            request.extensions = {**request.extensions, "sni_hostname": host}

    def client(self, **options: object) -> httpx.Client:
        """An ``httpx.Client`` whose every request passes ``pin``; redirects not followed."""
        guard = self

        class _Guarded(httpx.HTTPTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                guard.pin(request)
                return super().handle_request(request)

        return httpx.Client(transport=_Guarded(), follow_redirects=False, **options)  # type: ignore[arg-type]

    def async_client(self, *, module: Any = httpx, **options: object) -> Any:
        """The same for async callers; ``module`` is ``httpx`` or its API twin ``httpx2``
        (what the ``mcp`` SDK's streamable HTTP client takes)."""
        guard = self

        class _Guarded(module.AsyncHTTPTransport):  # type: ignore[misc,name-defined]
            async def handle_async_request(self, request: Any) -> Any:
                guard.pin(request)  # resolves in the loop's thread: one lookup per request
                return await super().handle_async_request(request)

        return module.AsyncClient(transport=_Guarded(), follow_redirects=False, **options)


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ToolCallError(f"cannot resolve {host!r}", retryable=True, host=host) from exc
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # An IPv4 address wrapped in IPv6 (mapped, 6to4) is judged as that IPv4 address.
    wrapped = getattr(address, "ipv4_mapped", None) or getattr(address, "sixtofour", None)
    if wrapped is not None:
        address = wrapped
    # Not global also covers what is neither private nor public, such as the shared
    # address space 100.64.0.0/10 (Alibaba Cloud's metadata service: 100.100.100.200).
    return (not address.is_global or address.is_private or address.is_loopback
            or address.is_link_local or address.is_reserved or address.is_multicast
            or address.is_unspecified)
