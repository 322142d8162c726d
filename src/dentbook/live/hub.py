"""The process's live side: the listener's booking changes routed to the topics they
concern, holds announced free at the instant they lapse (no cron, no worker: a timer in
this process), staff streams ended with their session, everyone resynchronised after a gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from jinja2 import Environment

from dentbook.db import Database
from dentbook.live.changes import BOOKINGS, SESSIONS, Change, parse_session_end
from dentbook.live.fanout import Fanout, booking_key, clinic_key, doctor_key
from dentbook.live.grids import Grids
from dentbook.live.listener import Handler, Listener
from dentbook.live.render import Renderer
from dentbook.live.topics import BookingTopic, CalendarTopic, StaffTopic
from dentbook.settings import Settings
from dentbook.tenancy import Clinics

log = logging.getLogger(__name__)
T = TypeVar("T")
K = TypeVar("K")
FRESH_SECONDS = 30.0  # how long a calendar's current state may be served to newcomers
MAX_CACHED = 10_000  # topics (or current states) kept before the cache starts over
KEEPALIVE = b": keep-alive\n\n"


class Live:
    def __init__(self, db: Database, clinics: Clinics, grids: Grids, settings: Settings,
                 env: Environment, listen_url: str, others: Mapping[str, Handler]) -> None:
        self.fanout = Fanout()
        self.grids = grids
        self.render = Renderer(db, clinics, grids, settings, env, self.fanout.next_id)
        # Other channels served by this process's one listener; after a gap each is called
        # with "" (its notifications may have been missed).
        self.others = dict(others)
        self.listener = Listener(listen_url, {BOOKINGS: self.on_booking,
                                              SESSIONS: self.on_session_end, **self.others},
                                 self.resync)
        self.keepalive_seconds = 15.0
        self.send_timeout_seconds = 10.0
        # A crowd opening the same calendar costs one database read and one render, not
        # one each: subscription requests map to topics, and each topic's current cells
        # are kept until a change touches its doctor (or they are 30 s old).
        self._topics: dict[tuple[Any, ...], tuple[float, asyncio.Future[CalendarTopic]]] = {}
        self._current: dict[CalendarTopic, tuple[float, asyncio.Future[bytes]]] = {}
        self._timers: dict[tuple[UUID, datetime, datetime], asyncio.TimerHandle] = {}
        self._keepalive: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.listener.start()
        self._keepalive = asyncio.get_running_loop().call_later(self.keepalive_seconds,
                                                                self._keep_alive)

    def _keep_alive(self) -> None:
        """One timer for every direct stream of the process (queued streams time their own)."""
        self.fanout.keep_alive(KEEPALIVE)
        self._keepalive = asyncio.get_running_loop().call_later(self.keepalive_seconds,
                                                                self._keep_alive)

    async def stop(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        await self.listener.stop()
        self.fanout.close_all()

    async def topic_for(self, key: tuple[Any, ...],
                        resolve: Callable[[], Awaitable[CalendarTopic]]) -> CalendarTopic:
        return await _shared(self._topics, key, resolve)

    async def current(self, topic: CalendarTopic) -> bytes:
        """All of the topic's cells now; call after subscribing, so nothing falls between."""

        async def compute() -> bytes:
            return await self._calendar(topic) or b""

        return await _shared(self._current, topic, compute)

    async def on_booking(self, payload: str) -> None:
        try:
            change = Change.parse(payload)
        except ValueError as exc:
            log.warning("ignored a notification: %s", exc)
            return
        self.schedule_lapse(change)
        await self._deliver(change)

    async def on_change(self, change: Change) -> None:
        # Grids and cells computed before this change are stale from now on.
        self.grids.changed(change.tenant, change.doctor)
        for stale in [t for t in self._current if t.tenant == change.tenant
                      and t.doctor == change.doctor]:
            del self._current[stale]
        for topic in self.fanout.watching(doctor_key(change.tenant, change.doctor)):
            assert isinstance(topic, CalendarTopic)
            message = await self._calendar(topic, (change.start, change.end))
            if message:
                self.fanout.publish(topic, message)
        for topic in self.fanout.watching(booking_key(change.booking)):
            assert isinstance(topic, BookingTopic)
            self.fanout.publish(topic, await self.render.outcome(topic))
        for topic in self.fanout.watching(clinic_key(change.tenant)):
            assert isinstance(topic, StaffTopic)
            self.fanout.publish(topic, await self.render.appointments(topic))

    def on_session_end(self, payload: str) -> None:
        """A staff session ended (signed out, in any process): end its streams now."""
        ended = parse_session_end(payload)
        if ended is None:
            log.warning("ignored a session notification")
            return
        tenant, key = ended
        for topic in self.fanout.watching(clinic_key(tenant)):
            for sub in self.fanout.subscribers(topic):
                if sub.tag == key:
                    sub.close()

    async def resync(self) -> None:
        """After a gap: anything may have changed while we were deaf."""
        for handle in self.others.values():
            result = handle("")
            if result is not None:
                await result
        self._current.clear()
        for topic in list(self.fanout.topics):
            if isinstance(topic, CalendarTopic):
                message = await self._calendar(topic)
                if message:
                    self.fanout.publish(topic, message)
            elif isinstance(topic, BookingTopic):
                self.fanout.publish(topic, await self.render.outcome(topic))
            elif isinstance(topic, StaffTopic):
                self.fanout.publish(topic, await self.render.appointments(topic))

    async def _calendar(self, topic: CalendarTopic,
                        around: tuple[datetime, datetime] | None = None) -> bytes | None:
        cells = await self.render.calendar(topic, around)
        for start, end, expires in cells.holds:
            self.schedule_lapse(Change(topic.tenant, topic.doctor, UUID(int=0), start, end,
                                       "pending", expires))
        return cells.message

    def schedule_lapse(self, change: Change) -> None:
        """At the hold's expiry instant, recheck its slot."""
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
            log.exception("could not announce a change")


async def _shared(cache: dict[K, tuple[float, asyncio.Future[T]]], key: K,
                  make: Callable[[], Awaitable[T]]) -> T:
    """The cached result for `key` while it is fresh (FRESH_SECONDS); otherwise compute
    `make()` once for everyone asking for `key` meanwhile, and cache the result."""
    loop = asyncio.get_running_loop()
    known = cache.get(key)
    if known is not None and loop.time() - known[0] < FRESH_SECONDS:
        return await asyncio.shield(known[1])
    if len(cache) > MAX_CACHED:
        cache.clear()
    future: asyncio.Future[T] = loop.create_future()
    cache[key] = (loop.time(), future)
    try:
        future.set_result(await make())
    except BaseException as exc:
        if cache.get(key, (0, None))[1] is future:
            del cache[key]
        future.set_exception(exc)
        future.exception()  # retrieved: the waiters get it, nobody logs it as lost
        raise
    return future.result()
