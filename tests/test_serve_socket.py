"""dentbook's HTTP protocol turns Nagle's algorithm off on every connection.

uvicorn with several workers listens on a socket made as `socket.socket(family)` (proto 0);
asyncio then leaves TCP_NODELAY off on accepted connections (`dentbook serve` makes its
own sockets, but the protocol may be run under uvicorn's). The control case shows that
condition is real; the product's protocol must set the option anyway.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from dentbook.protocol import DentbookProtocol
from helpers import run_async


async def _app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not called: no request is sent")


async def _nodelay_of_accepted(protocol: type[H11Protocol]) -> int:
    config = Config(app=_app, log_config=None)
    state = ServerState()
    made: list[H11Protocol] = []

    def factory() -> H11Protocol:
        made.append(protocol(config=config, server_state=state, app_state={}))
        return made[-1]

    listener = socket.socket(socket.AF_INET)  # as uvicorn binds for several workers
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname())
        for _ in range(500):
            if made and getattr(made[0], "transport", None) is not None:
                break
            await asyncio.sleep(0.01)
        accepted = made[0].transport.get_extra_info("socket")
        value = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.close()
        made[0].transport.close()
        return value
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("protocol", "expected_on"), [(H11Protocol, False), (DentbookProtocol, True)])
def test_nagle_is_off_on_accepted_connections(protocol: type[H11Protocol], expected_on: bool) -> None:
    assert bool(run_async(_nodelay_of_accepted(protocol))) is expected_on
