"""Server-Sent Events: live calendars and the live booking outcome.

Clients watching the same thing share a topic; each change is rendered once per topic
(slot cells with `hx-swap-oob`, or the outcome box) and the same bytes go to every
client of it. A connecting client gets the current state first (with an `id:`), so a
reconnect, with or without Last-Event-ID, always ends up current.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from jinja2 import Environment
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.types import Receive, Scope, Send

from dentbook import booking, staff
from dentbook.availability import load_calendar
from dentbook.db import Database, Level
from dentbook.errors import Invalid, NotFound
from dentbook.realtime import SESSIONS, Change, Hub, Subscriber, parse_session_end, sse
from dentbook.settings import Settings
from dentbook.tenancy import enter_clinic
from dentbook.web.params import optional_uuid, optional_week
from dentbook.web.render import render_fragment, request_locale

KEEPALIVE = b": keep-alive\n\n"
T = TypeVar("T")
FRESH_SECONDS = 30.0  # how long a calendar's current state may be served to newcomers
# A tuple, copied into a new list for each response: middleware (CSRF) appends its
# Set-Cookie to the list it is given, so a shared list would carry one visitor's cookies
# to every later stream.
HEADERS = ((b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
           (b"x-accel-buffering", b"no"))


@dataclass(frozen=True)
class CalendarTopic:
    slug: str
    tenant: UUID
    doctor: UUID
    visit: UUID
    monday: date
    locale: str


@dataclass(frozen=True)
class StaffTopic:
    """A clinic's dashboard with its filters; the rows are rendered at staff level."""

    slug: str
    tenant: UUID
    doctor: UUID | None
    day: date | None
    locale: str


@dataclass(frozen=True)
class BookingTopic:
    slug: str
    tenant: UUID
    booking: UUID
    locale: str


class Live:
    """The hub plus what to send for each kind of topic."""

    def __init__(self, db: Database, settings: Settings, env: Environment, listen_url: str,
                 others: Mapping[str, Callable[[str], None]]) -> None:
        self.db, self.settings, self.env = db, settings, env
        self.hub = Hub(listen_url, self.on_change, self.on_resync,
                       {SESSIONS: self.on_session_end, **others})
        self.keepalive_seconds = 15.0
        self.send_timeout_seconds = 10.0
        # A crowd opening the same calendar costs one database read and one render, not
        # one each: subscription requests map to topics, and each topic's current cells
        # are kept until a change touches its doctor (or they are 30 s old).
        self._topics: dict[tuple[Any, ...], tuple[float, asyncio.Future[CalendarTopic]]] = {}
        self._current: dict[CalendarTopic, tuple[float, asyncio.Future[bytes]]] = {}

    async def topic_for(self, key: tuple[Any, ...],
                        resolve: Callable[[], Awaitable[CalendarTopic]]) -> CalendarTopic:
        loop = asyncio.get_running_loop()
        known = self._topics.get(key)
        if known is not None and loop.time() - known[0] < FRESH_SECONDS:
            return await asyncio.shield(known[1])
        if len(self._topics) > 10_000:
            self._topics.clear()
        return await _shared(self._topics, key, loop, resolve)

    async def current(self, topic: CalendarTopic) -> bytes:
        """All of the topic's cells now; call after subscribing, so nothing falls between."""
        loop = asyncio.get_running_loop()
        known = self._current.get(topic)
        if known is not None and loop.time() - known[0] < FRESH_SECONDS:
            return await asyncio.shield(known[1])
        if len(self._current) > 10_000:
            self._current.clear()

        async def compute() -> bytes:
            return await self.calendar(topic) or b""

        return await _shared(self._current, topic, loop, compute)

    async def on_change(self, change: Change) -> None:
        # Cells computed before this change are stale for newcomers from now on.
        for stale in [t for t in self._current if t.tenant == change.tenant
                      and t.doctor == change.doctor]:
            del self._current[stale]
        for topic in list(self.hub.topics):
            if (isinstance(topic, CalendarTopic) and topic.tenant == change.tenant
                    and topic.doctor == change.doctor):
                message = await self.calendar(topic, (change.start, change.end))
                if message:
                    self.hub.publish(topic, message)
            elif isinstance(topic, BookingTopic) and topic.booking == change.booking:
                self.hub.publish(topic, await self.outcome(topic))
            elif isinstance(topic, StaffTopic) and topic.tenant == change.tenant:
                self.hub.publish(topic, await self.appointments(topic))

    def on_session_end(self, payload: str) -> None:
        """A staff session ended (signed out, in any process): end its streams now."""
        ended = parse_session_end(payload)
        if ended is None:
            return
        tenant, key = ended
        for topic, subs in list(self.hub.topics.items()):
            if isinstance(topic, StaffTopic) and topic.tenant == tenant:
                for sub in [s for s in subs if s.tag == key]:
                    sub.close()

    async def on_resync(self) -> None:
        self._current.clear()
        for topic in list(self.hub.topics):
            if isinstance(topic, CalendarTopic):
                message = await self.calendar(topic)
                if message:
                    self.hub.publish(topic, message)
            elif isinstance(topic, BookingTopic):
                self.hub.publish(topic, await self.outcome(topic))
            elif isinstance(topic, StaffTopic):
                self.hub.publish(topic, await self.appointments(topic))

    async def appointments(self, topic: StaffTopic) -> bytes:
        """The dashboard's table body, read as staff under row level security."""
        async with self.db.transaction(Level.STAFF, topic.tenant) as conn:
            clinic = await enter_clinic(conn, topic.slug)
            rows = await staff.upcoming(conn, clinic.zone, doctor=topic.doctor, day=topic.day)
        html = render_fragment(self.env, "fragments/appointments_body.html", topic.locale,
                               clinic=clinic, appointments=rows, oob=True)
        return sse(self.hub.next_id(), html)

    async def calendar(self, topic: CalendarTopic,
                       around: tuple[datetime, datetime] | None = None) -> bytes | None:
        """The topic's slot cells (those overlapping `around`, or all), as one message."""
        async with self.db.transaction(Level.ANON) as conn:
            clinic = await enter_clinic(conn, topic.slug)
            cal = await load_calendar(
                conn, clinic, topic.doctor, topic.visit, topic.monday, datetime.now(UTC),
                timedelta(minutes=self.settings.min_notice_minutes), self.settings.max_weeks_ahead)
        if cal.week is None:
            return None
        for start, end, expires in cal.week.holds:
            self.hub.schedule_lapse(Change(clinic.id, topic.doctor, UUID(int=0), start, end,
                                           "pending", expires))
        slots = [s for d in cal.week.days for s in d.slots
                 if around is None or (s.start < around[1] and around[0] < s.end)]
        if not slots and around is not None:
            return None
        html = render_fragment(self.env, "fragments/slot_updates.html", topic.locale, cal=cal,
                               clinic=clinic, slots=slots)
        return sse(self.hub.next_id(), html)

    async def outcome(self, topic: BookingTopic) -> bytes:
        async with self.db.transaction(Level.ANON) as conn:
            clinic = await enter_clinic(conn, topic.slug)
            view = await booking.view(conn, topic.booking)
        html = render_fragment(self.env, "fragments/booking_outcome.html", topic.locale,
                               clinic=clinic, booking=view, oob=True)
        return sse(self.hub.next_id(), html)

    async def stream(self, send: Send, receive: Receive, topic: Any, sub: Subscriber,
                     first: bytes, lifetime: float | None = None) -> None:
        """Serve one subscribed client until it leaves, falls behind, we shut down, or
        `lifetime` seconds pass (the browser then reconnects, and is checked again)."""
        watcher = asyncio.create_task(_watch_disconnect(receive, sub))
        if lifetime is not None:
            asyncio.get_running_loop().call_later(lifetime, sub.close)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": list(HEADERS)})
            message: bytes | None = first
            while message is not None:
                await asyncio.wait_for(
                    send({"type": "http.response.body", "body": message, "more_body": True}),
                    self.send_timeout_seconds)
                try:
                    message = await asyncio.wait_for(sub.queue.get(), self.keepalive_seconds)
                except TimeoutError:
                    message = KEEPALIVE
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (TimeoutError, OSError):
            pass  # a client that stopped reading: it will reconnect and be resynced
        finally:
            watcher.cancel()
            self.hub.unsubscribe(topic, sub)


async def _shared(cache: dict[Any, Any], key: Any, loop: asyncio.AbstractEventLoop,
                  make: Callable[[], Awaitable[T]]) -> T:
    """Compute `make()` once for everyone asking for `key` meanwhile; cache the result."""
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


async def _watch_disconnect(receive: Receive, sub: Subscriber) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    sub.close()


class EventStream(Response[None]):
    """A response that hands the raw ASGI channel to `Live.stream` (no buffering)."""

    def __init__(self, live: Live, topic: Any, first: Callable[[], Awaitable[bytes]],
                 lifetime: float | None = None, tag: str | None = None) -> None:
        super().__init__(content=None)
        self.live, self.topic, self.first, self.lifetime = live, topic, first, lifetime
        self.tag = tag

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            # Subscribe before reading the current state: a change in between is queued.
            sub = self.live.hub.subscribe(self.topic, self.tag)
            try:
                first = await self.first()
            except BaseException:
                self.live.hub.unsubscribe(self.topic, sub)
                raise
            await self.live.stream(send, receive, self.topic, sub, first, self.lifetime)
        return app


@get("/{slug:str}/events", name="calendar_events")
async def calendar_events(request: Request[Any, Any, Any], live: NamedDependency[Live],
                          slug: FromPath[str]) -> EventStream:
    q = request.query_params
    doctor = optional_uuid(q.get("doctor"), "doctor")
    if doctor is None:
        raise NotFound("doctor")
    visit = optional_uuid(q.get("visit"), "visit")
    week = optional_week(q.get("week"))

    async def resolve() -> CalendarTopic:
        async with live.db.transaction(Level.ANON) as conn:
            clinic = await enter_clinic(conn, slug)
            cal = await load_calendar(conn, clinic, doctor, visit, week, datetime.now(UTC),
                                      timedelta(0), live.settings.max_weeks_ahead)
        if cal.visit is None or cal.week is None:
            raise NotFound("visit")
        return CalendarTopic(slug, clinic.id, doctor, cal.visit.id, cal.week.monday,
                             request_locale(request, clinic.default_locale))

    key = (slug, doctor, visit, week, q.get("lang"), request.cookies.get("lang"),
           request.headers.get("accept-language", "")[:64])
    topic = await live.topic_for(key, resolve)
    return EventStream(live, topic, lambda: live.current(topic))


@get("/{slug:str}/bookings/{booking_id:str}/events", name="booking_events")
async def booking_events(request: Request[Any, Any, Any], live: NamedDependency[Live],
                         slug: FromPath[str], booking_id: FromPath[str]) -> EventStream:
    found = optional_uuid(booking_id, "booking")
    if found is None:
        raise Invalid({"booking": "invalid"})
    async with live.db.transaction(Level.ANON) as conn:
        clinic = await enter_clinic(conn, slug)
        await booking.view(conn, found)
    topic = BookingTopic(slug, clinic.id, found, request_locale(request, clinic.default_locale))
    return EventStream(live, topic, lambda: live.outcome(topic))


STAFF_STREAM_SECONDS = 60.0  # then the browser reconnects and its session is checked again


@get("/{slug:str}/staff/events", name="staff_events")
async def staff_events(request: Request[Any, Any, Any], live: NamedDependency[Live],
                       slug: FromPath[str]) -> EventStream | Response[str]:
    async with live.db.transaction(Level.SERVICE) as conn:
        clinic = await enter_clinic(conn, slug)
        user = await staff.current_staff(conn, live.settings, request.cookies.get(staff.COOKIE))
    if user is None:
        return Response("sign in first", status_code=401, media_type="text/plain",
                        headers={"Cache-Control": "no-store"})
    q = request.query_params
    day = staff.parse_day(q.get("day"))
    async with live.db.transaction(Level.STAFF, clinic.id) as conn:
        doctor = staff.parse_doctor(q.get("doctor"), await staff.list_doctors(conn))
    topic = StaffTopic(slug, clinic.id, doctor, day, request_locale(request, clinic.default_locale))
    return EventStream(live, topic, lambda: live.appointments(topic), STAFF_STREAM_SECONDS,
                       tag=staff.stream_key(request.cookies.get(staff.COOKIE)))
