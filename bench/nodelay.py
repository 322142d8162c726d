"""BENCH-ONLY what-if: the product app, unchanged, under `uvicorn --workers 2`, but with
TCP_NODELAY set on every accepted connection.

Why: with `--workers N > 1` uvicorn binds the shared listening socket itself with
`socket.socket(family)` (proto 0); accepted sockets inherit proto 0, and asyncio only sets
TCP_NODELAY when proto == IPPROTO_TCP. Nagle's algorithm then holds a response's body (a
second small write after the headers) until the client's delayed ACK, ~40 ms on Linux, on
every keep-alive request after the first (uvicorn issue #3149, open). `dentbook serve
--workers 2` inherits this; this variant measures what it costs. Never used outside bench/:
`uvicorn bench.nodelay:create_app --factory --workers 2`.
"""

from __future__ import annotations

import socket
from asyncio import base_events

from litestar import Litestar

from dentbook.app import create_app_from_env


def _set_nodelay(sock: socket.socket) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def create_app() -> Litestar:
    # asyncio's selector transports call base_events._set_nodelay on every accepted socket.
    base_events._set_nodelay = _set_nodelay  # type: ignore[attr-defined]
    return create_app_from_env()
