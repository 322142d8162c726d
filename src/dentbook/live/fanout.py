"""Per-topic fan-out of SSE messages to this process's streams.

A topic is what a group of streams watches (a calendar week, a dashboard, a booking);
clients of one topic get the same bytes, so a message is built once per topic, never once
per client. Topics are indexed by what changes reach them — (clinic, doctor) for calendars,
the clinic for dashboards, the booking for its outcome — so a change touches only its own
subscribers instead of scanning every topic. Where the server lets us (dentbook's own HTTP
protocol, HTTP/1.1), a message is framed once and written straight to each client's
connection; elsewhere each stream has a bounded queue and a coroutine. A client that falls
behind is disconnected (it reconnects and is brought up to date), never silently left with
a stale calendar.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Hashable, Iterator
from typing import Protocol
from uuid import UUID

QUEUE_SIZE = 64  # messages a client may fall behind before it is disconnected
# The last message of every stream when this process shuts down: reconnect in a second,
# which the load balancer sends to a process that is still up.
FAREWELL = b"retry: 1000\n\n"
LAST_CHUNK = b"0\r\n\r\n"  # the end of a chunked HTTP/1.1 body


class Topic(Protocol):
    """Something streams watch. `keys` are the index entries a change may be routed by."""

    @property
    def keys(self) -> tuple[Hashable, ...]: ...


class Subscriber:
    """One SSE client. `tag` names what the stream depends on beyond its topic (a staff
    session), so it can be ended. `offer` gets each message and its HTTP/1.1 chunk."""

    dropped = False

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag

    def offer(self, message: bytes, chunk: bytes) -> None:
        raise NotImplementedError

    def close(self, farewell: bytes | None = None) -> None:
        """End the stream; `farewell` is its last message."""
        raise NotImplementedError


class QueueSubscriber(Subscriber):
    """A stream served through the ASGI `send` by its own coroutine: a bounded queue;
    `None` in it means "close the stream"."""

    def __init__(self, size: int = QUEUE_SIZE, tag: str | None = None) -> None:
        super().__init__(tag)
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)

    def offer(self, message: bytes, chunk: bytes) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.close()
            self.dropped = True

    def close(self, farewell: bytes | None = None) -> None:
        """End the stream: drop what is queued, leave only `farewell` and the end marker."""
        while not self.queue.empty():
            self.queue.get_nowait()
        if farewell is not None and self.queue.maxsize != 1:
            self.queue.put_nowait(farewell)
        self.queue.put_nowait(None)


class DirectSubscriber(Subscriber):
    """A stream written straight to its connection's transport: the same pre-framed chunk
    for every client of a topic, no coroutine woken per client, no copy. Until `attach`
    (its first message has gone out through ASGI) offered chunks wait in order. Once
    attached the stream owns the connection and no request task waits on it: when it ends
    it writes the last chunk, closes the connection and calls `on_end` once. A client whose
    unsent bytes pass `limit` is cut off: it reconnects and is brought up to date."""

    def __init__(self, tag: str | None = None, limit: int = 256 * 1024) -> None:
        super().__init__(tag)
        self.limit = limit
        self.transport: asyncio.WriteTransport | None = None
        self._waiting: list[bytes] | None = []
        self._on_end: Callable[[], None] | None = None
        self.closed = False
        self.ended = False

    def attach(self, transport: asyncio.WriteTransport, on_end: Callable[[], None]) -> None:
        self.transport, self._on_end = transport, on_end
        waiting, self._waiting = self._waiting or [], None
        for chunk in waiting:
            self._write(chunk)
        if self.closed or transport.is_closing():
            self._end()

    def offer(self, message: bytes, chunk: bytes) -> None:
        if self.closed:
            return
        if self._waiting is not None:
            self._waiting.append(chunk)
            if len(self._waiting) > QUEUE_SIZE:
                self.dropped = True
                self.close()
            return
        self._write(chunk)

    def _write(self, chunk: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if transport.is_closing():
            self.close()
        elif transport.get_write_buffer_size() > self.limit:
            self.dropped = True
            transport.abort()  # what it has not read is lost: it reconnects and is resynced
            self.close()
        else:
            transport.write(chunk)

    def close(self, farewell: bytes | None = None) -> None:
        """End the stream (now, or once attached), with `farewell` as its last message."""
        if self.closed:
            return
        self.closed = True
        if farewell is not None:
            if self._waiting is not None:  # written by `attach`, before the stream ends
                self._waiting.append(chunk_of(farewell))
            elif self.transport is not None and not self.transport.is_closing():
                self.transport.write(chunk_of(farewell))
        if self.transport is not None:
            self._end()

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = self.closed = True
        transport = self.transport
        assert transport is not None
        if not transport.is_closing():
            transport.write(LAST_CHUNK)
            transport.close()  # after what is buffered has been written
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()


def chunk_of(message: bytes) -> bytes:
    """`message` as one HTTP/1.1 chunk (what h11 would write), made once for all clients."""
    return b"%x\r\n%s\r\n" % (len(message), message)


class Fanout:
    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self.topics: dict[Topic, set[Subscriber]] = {}
        self._index: dict[Hashable, set[Topic]] = {}
        self._boot = secrets.token_hex(3)
        self._sequence = 0
        self.closed = False  # shutting down: streams end as soon as they start

    def next_id(self) -> str:
        """A message id, unique across this process's life (`Last-Event-ID`)."""
        self._sequence += 1
        return f"{self._boot}-{self._sequence}"

    def subscribe(self, topic: Topic, tag: str | None = None, direct: bool = False) -> Subscriber:
        sub: Subscriber = DirectSubscriber(tag) if direct else QueueSubscriber(self.queue_size, tag)
        subs = self.topics.get(topic)
        if subs is None:
            subs = self.topics[topic] = set()
            for key in topic.keys:
                self._index.setdefault(key, set()).add(topic)
        subs.add(sub)
        if self.closed:
            sub.close(FAREWELL)
        return sub

    def unsubscribe(self, topic: Topic, sub: Subscriber) -> None:
        subs = self.topics.get(topic)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self.topics[topic]
            for key in topic.keys:
                watched = self._index.get(key)
                if watched is not None:
                    watched.discard(topic)
                    if not watched:
                        del self._index[key]

    def watching(self, key: Hashable) -> list[Topic]:
        """The topics a change routed by `key` may concern."""
        return list(self._index.get(key, ()))

    def publish(self, topic: Topic, message: bytes) -> None:
        chunk = chunk_of(message)
        for sub in list(self.topics.get(topic, ())):
            sub.offer(message, chunk)

    def keep_alive(self, message: bytes) -> None:
        """One comment to every direct stream at once (queued streams send their own)."""
        chunk = chunk_of(message)
        # Snapshots: a stream that ends while written to unsubscribes at once.
        for subs in list(self.topics.values()):
            for sub in list(subs):
                if isinstance(sub, DirectSubscriber):
                    sub.offer(message, chunk)

    def subscribers(self, topic: Topic) -> Iterator[Subscriber]:
        return iter(list(self.topics.get(topic, ())))

    def clients(self) -> int:
        return sum(len(s) for s in self.topics.values())

    def close_all(self) -> None:
        """End every stream (shutting down), each with FAREWELL, and any that starts later."""
        if self.closed:
            return
        self.closed = True
        for subs in list(self.topics.values()):
            for sub in list(subs):
                sub.close(FAREWELL)


def doctor_key(tenant: UUID, doctor: UUID) -> tuple[str, UUID, UUID]:
    return ("doctor", tenant, doctor)


def clinic_key(tenant: UUID) -> tuple[str, UUID]:
    return ("clinic", tenant)


def booking_key(booking: UUID) -> tuple[str, UUID]:
    return ("booking", booking)
