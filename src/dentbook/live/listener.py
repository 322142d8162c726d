"""One LISTEN connection per process, straight to PostgreSQL (never through a pooler: a
transaction pooler cannot hold a session's LISTEN), dispatching each channel's payloads.

It reconnects with back-off after the database restarts, restarts itself if it dies of
anything unexpected, and after any gap calls `on_gap` (notifications may have been missed:
calendars resync, caches forget, the job runner looks for due work). `ready` is what
/readyz reports: calendars are live only while the listener is connected.

Why not Litestar's channels plugin with its psycopg backend (evaluated first): its listener
does not reconnect after the database restarts (it hands the error to the subscribers and
stops), it has no hook to resynchronise clients after a gap, and its backlog strategies
silently drop messages for a slow subscriber instead of disconnecting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping

import psycopg

log = logging.getLogger(__name__)

Handler = Callable[[str], Awaitable[None] | None]


class Listener:
    def __init__(self, url: str, handlers: Mapping[str, Handler],
                 on_gap: Callable[[], Awaitable[None]]) -> None:
        self.url = url
        self.handlers = dict(handlers)
        self.on_gap = on_gap
        self.connected = asyncio.Event()
        self.restart_delay = 0.5
        self.notifications = 0
        # Called after each notification is handled (the metrics' listener lag).
        self.on_notification: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._gap = False

    @property
    def ready(self) -> bool:
        return self.connected.is_set()

    async def start(self) -> None:
        self._stopping = False
        self._run()

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _run(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="dentbook-listener")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        # The loop handles what it expects; anything else must not leave us deaf for good.
        self.connected.clear()
        if self._stopping or task.cancelled():
            return
        log.error("listener died; restarting it", exc_info=task.exception())
        self._gap = True
        asyncio.get_running_loop().call_later(self.restart_delay, self._restart)

    def _restart(self) -> None:
        if not self._stopping:
            self._run()

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, application_name="dentbook listener") as conn:
                    for channel in self.handlers:
                        await conn.execute(f"listen {channel}")
                    self.connected.set()
                    delay = 0.5
                    if self._gap:
                        log.info("listener reconnected; resynchronising")
                        self._gap = False
                        await self.on_gap()
                    async for note in conn.notifies():
                        self.notifications += 1
                        await self._dispatch(note.channel, note.payload)
                        if self.on_notification is not None:
                            self.on_notification()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self.connected.clear()
                self._gap = True
                log.warning("listener lost (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _dispatch(self, channel: str, payload: str) -> None:
        handler = self.handlers.get(channel)
        if handler is None:
            return
        result = handler(payload)
        if inspect.isawaitable(result):
            await result
