"""BENCH-ONLY baseline for the fan-out: the least an SSE relay of PostgreSQL NOTIFY can do
under the same server (uvicorn, 2 workers).

Raw ASGI, no framework: one LISTEN connection per worker on the product's channel, and per
stream one bounded queue and one coroutine (the structure of the product's hub), relaying
each NOTIFY payload as it comes, with no database read and no rendering. The difference to
`/{slug}/events` is what dentbook adds: resolving the topic, reading and rendering cells.
`uvicorn bench.minimal_sse:app --workers 2` with DATABASE_URL set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import psycopg

CHANNEL = "dentbook_bookings"
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]

_streams: set[asyncio.Queue[bytes]] = set()
_listener: asyncio.Task[None] | None = None


async def _listen(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"listen {CHANNEL}")
        async for note in conn.notifies():
            message = b"data: " + note.payload.encode() + b"\n\n"
            for queue in list(_streams):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(message)


async def _lifespan(receive: Any, send: Any) -> None:
    global _listener
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _listener = asyncio.create_task(_listen(os.environ["DATABASE_URL"]))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _listener is not None:
                _listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await _listener
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _stream(receive: Any, send: Any) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue(64)
    _streams.add(queue)

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(b"")

    watcher = asyncio.create_task(watch())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": b"data: subscribed\n\n", "more_body": True})
        while message := await queue.get():
            await send({"type": "http.response.body", "body": message, "more_body": True})
    except OSError:
        pass
    finally:
        watcher.cancel()
        _streams.discard(queue)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["path"] == "/events":
        await _stream(receive, send)
    else:
        ok = scope["path"] == "/healthz" and (_listener is not None and not _listener.done())
        await send({"type": "http.response.start", "status": 200 if ok else 404,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok" if ok else b"not found"})
