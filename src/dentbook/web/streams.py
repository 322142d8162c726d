"""Server-Sent Events over HTTP: live calendars, the live booking outcome and the staff
agenda's stream.

A connecting client subscribes first and then gets the topic's current state (with an
`id:`), so a reconnect, with or without Last-Event-ID, always ends up current. Streams are
capped per process and per client address (DENTBOOK_MAX_STREAMS,
DENTBOOK_MAX_STREAMS_PER_CLIENT): beyond either the answer is 503 or 429 with Retry-After,
and the page keeps working without live updates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.types import Receive, Scope, Send
from prometheus_client import Gauge

from dentbook import agenda, booking, staff
from dentbook.db import Conn
from dentbook.errors import Invalid, NotFound
from dentbook.forms import Day, PathId, parse, path_id
from dentbook.live.fanout import DirectSubscriber, QueueSubscriber, Topic
from dentbook.live.hub import KEEPALIVE, Live
from dentbook.live.topics import BookingTopic, CalendarTopic, StaffTopic
from dentbook.protocol import DentbookProtocol
from dentbook.settings import Settings
from dentbook.staff import StaffUser
from dentbook.tenancy import Clinic
from dentbook.web.clients import client_address
from dentbook.web.guards import viewer
from dentbook.web.state import AppState

# A tuple, copied into a new list for each response: middleware (CSRF) appends its
# Set-Cookie to the list it is given, so a shared list would carry one visitor's cookies
# to every later stream.
HEADERS = ((b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
           (b"x-accel-buffering", b"no"))
STAFF_STREAM_SECONDS = 60.0  # then the browser reconnects and its session is checked again


class Streams:
    """This process's open streams, counted in total and per client address (and, when
    given, on the `dentbook_sse_streams` gauge)."""

    def __init__(self, settings: Settings, gauge: Gauge | None = None) -> None:
        self.limit, self.per_client = settings.max_streams, settings.max_streams_per_client
        self.open = 0
        self.by_client: Counter[str] = Counter()
        self.gauge = gauge

    def refusal(self, client: str | None) -> Response[str] | None:
        if self.open >= self.limit:
            return _refused(503, "too many live streams on this server")
        if client is not None and self.by_client[client] >= self.per_client:
            return _refused(429, "too many live streams from your address")
        return None

    def opened(self, client: str | None) -> Callable[[], None]:
        """Count a stream that opens now; returns what to call, once, when it ends."""
        self.open += 1
        if self.gauge is not None:
            self.gauge.inc()
        if client is not None:
            self.by_client[client] += 1
        done = False

        def closed() -> None:
            nonlocal done
            if done:
                return
            done = True
            self.open -= 1
            if self.gauge is not None:
                self.gauge.dec()
            if client is not None:
                self.by_client[client] -= 1
                if self.by_client[client] <= 0:
                    del self.by_client[client]
        return closed


def _refused(status: int, why: str) -> Response[str]:
    return Response(f"{why}; the page works without live updates\n", status_code=status,
                    media_type="text/plain", headers={"Retry-After": "30", "Cache-Control": "no-store"})


class EventStream(Response[None]):
    """A response that hands the raw ASGI channel to `serve_stream` (no buffering)."""

    def __init__(self, live: Live, topic: Topic, first: Callable[[], Awaitable[bytes]],
                 client: str | None, lifetime: float | None = None, tag: str | None = None) -> None:
        super().__init__(content=None)
        self.live, self.topic, self.first = live, topic, first
        self.client, self.lifetime, self.tag = client, lifetime, tag

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            streams: Streams = scope["app"].state.streams
            refused = streams.refusal(self.client)
            if refused is not None:
                await refused.to_asgi_response(*args, **kwargs)(scope, receive, send)
                return
            http = (scope.get("extensions") or {}).get("dentbook.http")
            direct = isinstance(http, DentbookProtocol) and scope.get("http_version") == "1.1"
            fanout, topic = self.live.fanout, self.topic
            closed = streams.opened(self.client)
            # Subscribe before reading the current state: a change in between waits.
            sub = fanout.subscribe(topic, self.tag, direct)

            def end() -> None:
                fanout.unsubscribe(topic, sub)
                closed()
            handed_off = False
            try:
                first = await self.first()
                if isinstance(sub, DirectSubscriber):
                    assert isinstance(http, DentbookProtocol)
                    # From here on the stream owns the connection and calls `end` itself.
                    handed_off = await start_direct(http, send, sub, first, end, self.lifetime)
                else:
                    assert isinstance(sub, QueueSubscriber)
                    await serve_stream(self.live, send, receive, sub, first, self.lifetime)
            finally:
                if not handed_off:
                    end()
        return app


async def start_direct(http: DentbookProtocol, send: Send, sub: DirectSubscriber, first: bytes,
                       end: Callable[[], None], lifetime: float | None = None) -> bool:
    """Start one client's stream: the head and the first message go through ASGI (uvicorn
    frames them), then the connection is handed to the fan-out, which writes chunks itself
    and ends the stream (sign-out, `lifetime`, slow client, shutdown, the client gone) by
    closing the connection and calling `end`. False if the client left before that."""
    try:
        await send({"type": "http.response.start", "status": 200, "headers": list(HEADERS)})
        await send({"type": "http.response.body", "body": first, "more_body": True})
    except OSError:
        return False  # the client went away meanwhile
    if http.transport.is_closing():
        return False
    timer = asyncio.get_running_loop().call_later(lifetime, sub.close) if lifetime else None

    def ended() -> None:
        if timer is not None:
            timer.cancel()
        end()
    http.hand_off(sub.close)
    sub.attach(http.transport, ended)
    return True


async def serve_stream(live: Live, send: Send, receive: Receive, sub: QueueSubscriber,
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
                live.send_timeout_seconds)
            try:
                message = await asyncio.wait_for(sub.queue.get(), live.keepalive_seconds)
            except TimeoutError:
                message = KEEPALIVE
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except (TimeoutError, OSError):
        pass  # a client that stopped reading: it will reconnect and be resynced
    finally:
        watcher.cancel()


async def _watch_disconnect(receive: Receive, sub: QueueSubscriber) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    sub.close()


class CalendarQuery(msgspec.Struct, frozen=True):
    doctor: PathId
    visit: PathId | None = None
    week: Day | None = None
    mode: Literal["book", "move"] = "book"


@get("/events", name="calendar_events")
async def calendar_events(request: Request[Any, Any, Any], state: AppState,
                          clinic: NamedDependency[Clinic], locale: NamedDependency[str]) -> EventStream:
    try:
        q = parse(CalendarQuery, request.query_params)
    except Invalid as exc:
        if "doctor" in exc.fields:
            raise NotFound("doctor") from None
        raise

    async def resolve() -> CalendarTopic:
        visit, monday = await state.live.render.week_of(clinic, q.doctor, q.visit, q.week, locale)
        return CalendarTopic(clinic.slug, clinic.id, q.doctor, visit, monday, locale, q.mode)

    key = (clinic.slug, q.doctor, q.visit, q.week, locale, q.mode)
    topic = await state.live.topic_for(key, resolve)
    return EventStream(state.live, topic, lambda: state.live.current(topic), client_address(request))


@get("/bookings/{booking_id:str}/events", name="booking_events")
async def booking_events(request: Request[Any, Any, Any], state: AppState,
                         clinic: NamedDependency[Clinic], anon_tx: NamedDependency[Conn],
                         locale: NamedDependency[str], booking_id: FromPath[str]) -> EventStream:
    found = path_id(booking_id)
    await booking.view(anon_tx, found)  # NotFound for anyone else's id
    topic = BookingTopic(clinic.slug, clinic.id, found, locale)
    return EventStream(state.live, topic, lambda: state.live.render.outcome(topic), client_address(request))


@get("/staff/events", name="staff_events", guards=[viewer], opt={"stream": True})
async def staff_events(request: Request[Any, Any, Any], state: AppState,
                       clinic: NamedDependency[Clinic], staff_user: NamedDependency[StaffUser],
                       staff_tx: NamedDependency[Conn],
                       locale: NamedDependency[str]) -> EventStream:
    filters = parse(agenda.Filters, request.query_params)
    if filters.doctor is not None and all(
            d.id != filters.doctor for d in await agenda.list_doctors(staff_tx)):
        raise Invalid({"doctor": "invalid_doctor"})
    topic = StaffTopic(clinic.slug, clinic.id, filters, locale,
                       staff_user.may(staff.Role.RECEPTION))
    return EventStream(state.live, topic, lambda: state.live.render.appointments(topic),
                       client_address(request), STAFF_STREAM_SECONDS,
                       tag=staff.stream_key(request.cookies.get(staff.COOKIE)))
