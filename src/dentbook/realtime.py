"""Realtime: one LISTEN connection per process, fanned out to per-client bounded queues.

Why not Litestar's channels plugin with its psycopg backend (evaluated first): its
listener does not reconnect after the database restarts (it hands the error to the
subscribers and stops), it has no hook to resynchronise clients after a gap, and its
backlog strategies silently drop messages for a slow subscriber instead of
disconnecting it, so a calendar could stay wrong without knowing it. This module is the
part we need: listen, reconnect with back-off, resync after a gap, drop slow clients
(they reconnect and are resynced), and fire "freed" at the instant a hold lapses.

Payloads come from `sql/functions.sql: notify_booking` (ids and instants only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "dentbook_bookings"
SESSIONS = "dentbook_sessions"  # a staff session ended: {"t": tenant, "k": its stream key}
QUEUE_SIZE = 64  # messages a client may fall behind before it is disconnected


@dataclass(frozen=True)
class Change:
    """A booking took or freed time (or a hold's lapse instant came)."""

    tenant: UUID
    doctor: UUID
    booking: UUID
    start: datetime
    end: datetime
    status: str
    expires: datetime | None

    @classmethod
    def parse(cls, payload: str) -> Change:
        """Raises ValueError for anything but what `notify_booking` sends: any role that may
        connect can NOTIFY on our channel, so a payload is input like any other."""
        try:
            p = json.loads(payload)
            status = p["st"]
            if not isinstance(status, str) or len(status) > 20:
                raise ValueError("bad status")
            change = cls(UUID(p["t"]), UUID(p["d"]), UUID(p["b"]), _instant(p["s"]),
                         _instant(p["e"]), status, _instant(p["x"]) if p.get("x") else None)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"malformed notification: {exc}") from None
        if change.end <= change.start:
            raise ValueError("malformed notification: empty interval")
        return change


def _instant(value: str) -> datetime:
    found = datetime.fromisoformat(value)
    if found.tzinfo is None:
        raise ValueError("instant without offset")
    return found.astimezone(UTC)


class Subscriber:
    """One SSE client: a bounded queue; `None` in it means "close the stream". `tag` names
    what the stream depends on beyond its topic (a staff session), so it can be ended."""

    def __init__(self, size: int = QUEUE_SIZE, tag: str | None = None) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)
        self.dropped = False
        self.tag = tag

    def offer(self, message: bytes) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.close()
            self.dropped = True

    def close(self) -> None:
        """End the stream: drop what is queued, leave only the end marker."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


OnChange = Callable[[Change], Awaitable[None]]
OnResync = Callable[[], Awaitable[None]]
OnNotify = Callable[[str], None]


class Hub:
    """The process's listener and its subscribers, grouped by topic.

    A topic is any hashable key; clients with the same topic get the same bytes, so a
    message is rendered once per topic, never once per client.
    """

    def __init__(self, url: str, on_change: OnChange, on_resync: OnResync,
                 others: Mapping[str, OnNotify], queue_size: int = QUEUE_SIZE) -> None:
        self.url = url
        self.on_change = on_change
        self.on_resync = on_resync
        # Other channels this process's one listener serves (payload handlers; each called
        # with "" after a gap, since notifications may have been missed meanwhile).
        self.others = dict(others)
        self.queue_size = queue_size
        self.topics: dict[Hashable, set[Subscriber]] = {}
        self.boot = secrets.token_hex(3)
        self.sequence = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.restart_delay = 0.5
        self._stopping = False
        self._gap = False  # the listener was down: clients must be resynchronised
        self._pending: set[asyncio.Task[None]] = set()
        self._timers: dict[tuple[UUID, datetime, datetime], asyncio.TimerHandle] = {}

    def next_id(self) -> str:
        self.sequence += 1
        return f"{self.boot}-{self.sequence}"

    def subscribe(self, topic: Hashable, tag: str | None = None) -> Subscriber:
        sub = Subscriber(self.queue_size, tag)
        self.topics.setdefault(topic, set()).add(sub)
        return sub

    def unsubscribe(self, topic: Hashable, sub: Subscriber) -> None:
        subs = self.topics.get(topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.topics[topic]

    def publish(self, topic: Hashable, message: bytes) -> None:
        for sub in list(self.topics.get(topic, ())):
            sub.offer(message)

    def clients(self) -> int:
        return sum(len(s) for s in self.topics.values())

    @property
    def ready(self) -> bool:
        """Whether the listener is connected: calendars are live only while it is."""
        return self.connected.is_set()

    async def start(self) -> None:
        self._stopping = False
        self._run_listener()

    def _run_listener(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="dentbook-listener")
        self._task.add_done_callback(self._listener_ended)

    def _listener_ended(self, task: asyncio.Task[None]) -> None:
        # The loop handles what it expects; anything else must not leave us deaf for good.
        self.connected.clear()
        if self._stopping or task.cancelled():
            return
        log.error("realtime: listener died; restarting it", exc_info=task.exception())
        self._gap = True
        asyncio.get_running_loop().call_later(self.restart_delay, self._restart_listener)

    def _restart_listener(self) -> None:
        if not self._stopping:
            self._run_listener()

    async def stop(self) -> None:
        self._stopping = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subs in self.topics.values():
            for sub in subs:
                sub.close()

    def schedule_lapse(self, change: Change) -> None:
        """At the hold's expiry instant, recheck its slot (no cron, no worker)."""
        if change.expires is None or change.status != "pending":
            return
        key = (change.doctor, change.start, change.expires)
        if key in self._timers:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, (change.expires - datetime.now(UTC)).total_seconds()) + 0.05

        def fire() -> None:
            self._timers.pop(key, None)
            lapse = Change(change.tenant, change.doctor, change.booking, change.start, change.end,
                           "lapsed", change.expires)
            task = asyncio.ensure_future(self._deliver(lapse))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        self._timers[key] = loop.call_later(delay, fire)

    async def _deliver(self, change: Change) -> None:
        try:
            await self.on_change(change)
        except Exception:  # a failed render must not stop the listener
            log.exception("realtime: could not announce a change")

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    for channel in (CHANNEL, *self.others):
                        await conn.execute(f"listen {channel}")
                    self.connected.set()
                    delay = 0.5
                    if self._gap:
                        # Anything may have changed while we were deaf: resync everyone.
                        log.info("realtime: listener reconnected, resynchronising clients")
                        self._gap = False
                        for handle in self.others.values():
                            handle("")
                        await self.on_resync()
                    async for note in conn.notifies():
                        if note.channel in self.others:
                            self.others[note.channel](note.payload)
                            continue
                        try:
                            change = Change.parse(note.payload)
                        except ValueError as exc:
                            log.warning("realtime: ignored a notification: %s", exc,
                                        extra={"sender_pid": note.pid})
                            continue
                        self.schedule_lapse(change)
                        await self._deliver(change)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self.connected.clear()
                self._gap = True
                log.warning("realtime: listener lost (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def parse_session_end(payload: str) -> tuple[UUID, str] | None:
    """(clinic, stream key) from a `dentbook_sessions` notification, or None if malformed."""
    try:
        p = json.loads(payload)
        tenant, key = UUID(p["t"]), p["k"]
    except (KeyError, TypeError, ValueError):
        return None
    return (tenant, key) if isinstance(key, str) and len(key) == 64 else None


def sse(message_id: str, html: str) -> bytes:
    """One SSE message carrying an HTML fragment (each line a `data:` line)."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() if line.strip())
    return f"id: {message_id}\n{lines}\n".encode()
