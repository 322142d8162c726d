"""uvicorn's HTTP/1.1 protocol as dentbook serves it: Nagle's algorithm off, a deadline
for reading each request, and live streams told to reconnect when the server shuts down.

Nagle: on a listening socket made as `socket.socket(family)` (proto 0), as uvicorn's own
`--workers` makes it, asyncio, which only sets TCP_NODELAY when proto is IPPROTO_TCP,
leaves Nagle on: a response body written after its headers then waits for the client's
delayed ACK, ~40 ms on Linux, on every keep-alive request and SSE message (uvicorn issue
#3149). `dentbook serve` makes its sockets itself (dentbook.workers); this protocol turns
Nagle off on whatever socket it is run on.

Streams: a request's ASGI scope carries this protocol under `extensions["dentbook.http"]`,
so a live stream can write pre-framed chunks straight to the transport and be told when
the connection is lost (`on_lost`) without a coroutine of its own watching for it. Once
its head and first message are out, the stream takes the connection over (`hand_off`):
the request's ASGI call returns, so no task, frames or request objects stay behind per
open stream, and uvicorn leaves the connection to the stream, which ends it.

Read deadline: uvicorn closes idle keep-alive connections but has no limit on how long a
request's head and body may take to arrive, so a slowloris (a few bytes a minute on many
connections) holds file descriptors until the server can accept nothing. Here a request
must be read whole within `read_timeout` seconds of its first byte (or of the connection
opening); otherwise the connection is closed. Streams are unaffected: their request is
read at once, the response is what lasts.

Shutdown: on SIGTERM uvicorn stops accepting, calls `shutdown()` on every connection and
waits (timeout_graceful_shutdown) for the responses in flight, and only then runs the app's
lifespan shutdown. A live stream never finishes by itself, so it would hold the server
until the timeout and then be cut. Here the first `shutdown()` calls the app's `drain`
(app.state.drain): every stream gets `retry: 1000` and ends, the browser reconnects a
second later to a process that is still accepting, and requests in flight finish.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

READ_TIMEOUT_SECONDS = 15.0


class DentbookProtocol(H11Protocol):
    read_timeout = READ_TIMEOUT_SECONDS
    _deadline: asyncio.TimerHandle | None = None
    on_lost: Callable[[], None] | None = None  # a stream's: the connection went away
    handed_off = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None:
            # The request's task has been made but not run yet: its scope can still say who
            # serves it.
            extensions: dict[str, Any] = self.cycle.scope.setdefault("extensions", {})
            extensions["dentbook.http"] = self
        if self._reading():
            self._arm()
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._reading():
            self._arm()  # a pipelined request is already on its way in

    def hand_off(self, on_lost: Callable[[], None]) -> None:
        """From now on a stream writes this response and closes the connection; the ASGI
        call may return without finishing it. `on_lost` is called if the client goes."""
        assert self.cycle is not None
        self.cycle.response_complete = True  # so uvicorn neither complains nor closes
        # Nor is the request's scope (and all Litestar hung on it) kept by this connection.
        self.cycle = None  # type: ignore[assignment]
        self.scope = self.headers = None  # type: ignore[assignment]
        self.handed_off = True
        self.on_lost = on_lost

    def shutdown(self) -> None:
        drain = _drain_of(self.app)
        if drain is not None:
            drain()
        if not self.handed_off:  # a handed-off stream was ended (and closed) by the drain
            super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
        if self.on_lost is not None:
            self.on_lost()

    def _reading(self) -> bool:
        """Part of a request has arrived and the rest has not."""
        state = self.conn.their_state
        return state is h11.SEND_BODY or (state is h11.IDLE and bool(self.conn.trailing_data[0]))

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        state = self.conn.their_state
        if state is h11.SEND_BODY or (state is h11.IDLE and self.cycle is None) or self._reading():
            self.logger.info("closing a connection that sent its request too slowly")
            self.transport.close()


def _drain_of(app: Any) -> Callable[[], None] | None:
    """The app's `state.drain`, through uvicorn's wrappers (proxy headers, message logger)."""
    for _ in range(5):
        state = getattr(app, "state", None)
        if state is not None:
            drain = getattr(state, "drain", None)
            return drain if callable(drain) else None
        app = getattr(app, "app", None)
    return None
