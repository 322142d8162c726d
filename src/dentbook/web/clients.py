"""Who is asking: the client's address and scheme, taken from proxy headers only when the
connection comes from a proxy the operator listed in DENTBOOK_TRUSTED_PROXIES.

Hold limits and sign-in throttling count client addresses, so a header anyone can send
must never choose the address counted. The ASGI server is told not to read proxy
headers itself (`serve`); this is the one place that does.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import Any

from litestar import Request
from litestar.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def trusted_networks(setting: str) -> tuple[Network, ...]:
    """The setting's comma-separated addresses and networks (validated in settings)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in setting.split(",") if part.strip())


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest
    address in X-Forwarded-For that is not itself a trusted proxy."""
    peer = request.client.host if request.client else None
    networks = trusted_networks(request.app.state.settings.trusted_proxies)
    if peer is None or not networks or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a proxy we trust wrote garbage: count the proxy itself
    return peer


def is_https(request: Request[Any, Any, Any]) -> bool:
    """Whether the browser is on HTTPS: our own scheme, or a trusted proxy's word for it."""
    return scope_is_https(request.scope, request.app.state.settings.trusted_proxies)


def scope_is_https(scope: Scope, trusted_proxies: str) -> bool:
    """`is_https` for an ASGI scope (for hooks that have no request)."""
    if scope.get("scheme") == "https":
        return True
    client = scope.get("client")
    peer = client[0] if client else None
    if peer is None or not _trusted(peer, trusted_networks(trusted_proxies)):
        return False
    proto = next((v for k, v in scope.get("headers", ()) if k.lower() == b"x-forwarded-proto"), b"")
    return proto.decode("latin-1").strip().lower() == "https"
