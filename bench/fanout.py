"""Fan-out: K open SSE calendars on one doctor; a booking of that doctor is committed (as the
owner role); how long until each client has the changed cell, and what each open stream costs.

Delay: from right after COMMIT returns (time.monotonic in this process) to the moment this
process reads the fragment on each stream (p50 / p99 / max, over every client and event).
Memory: server RSS (supervisor + workers, from /proc; the local Stripe left out) after the K
streams are open, minus before, over K. Baseline: the same K on `bench/minimal_sse.py` (raw
ASGI under the same uvicorn with 2 workers, relaying the NOTIFY without reading or
rendering anything). Each (server, K) runs on a freshly started server. The client is one
asyncio process of raw sockets (one Protocol per stream), on the same two cores; like a
browser that loaded the page first, every stream sends the page's (CSRF) cookie.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from bench import httpraw
from bench.common import (
    HOST,
    Row,
    Server,
    base_env,
    ms,
    ratio,
    server_rss_kib,
    summary_ms,
    uvicorn_server,
)
from bench.data import INSERT_BOOKING, Clinic, Context, iso, make_clinic, this_monday

BATCH = 250  # streams opened at once (then wait until each has its first message)
READY_TIMEOUT = 60.0


@dataclass
class Crowd:
    """What all streams share: the current marker and the arrival times per event."""

    marker: bytes = b""
    event: int = -1
    arrivals: list[list[float]] = field(default_factory=list)
    ready: int = 0
    refused: int = 0
    lost: int = 0
    waiter: asyncio.Future[None] | None = None
    want: int = 0

    def poke(self, count: int) -> None:
        if self.waiter is not None and not self.waiter.done() and count >= self.want:
            self.waiter.set_result(None)


class Stream(asyncio.Protocol):
    """One SSE client: finds the end of the first message, then watches for the marker."""

    def __init__(self, crowd: Crowd, request: bytes) -> None:
        self.crowd, self.request = crowd, request
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.tail = b""
        self.is_ready = False
        self.seen = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        crowd = self.crowd
        if not self.is_ready:
            self.buf += data
            head = self.buf.find(b"\r\n\r\n")
            if head < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 200"):
                crowd.refused += 1
                self.buf = b""
                if self.transport is not None:
                    self.transport.close()
                return
            if self.buf.find(b"\n\n", head + 4) >= 0:
                self.is_ready, self.buf = True, b""
                crowd.ready += 1
                crowd.poke(crowd.ready)
            return
        event = crowd.event
        if event < 0 or self.seen == event:
            return
        chunk = self.tail + data
        if crowd.marker in chunk:
            self.seen, self.tail = event, b""
            arrivals = crowd.arrivals[event]
            arrivals.append(time.monotonic())
            crowd.poke(len(arrivals))
        else:
            self.tail = chunk[-len(crowd.marker):]

    def connection_lost(self, exc: Exception | None) -> None:
        self.crowd.lost += 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _wait(crowd: Crowd, want: int, limit_s: float, current: int) -> None:
    if current >= want:
        return
    loop = asyncio.get_running_loop()
    crowd.waiter, crowd.want = loop.create_future(), want
    try:
        await asyncio.wait_for(crowd.waiter, limit_s)
    except TimeoutError:
        pass
    finally:
        crowd.waiter = None


async def _open(crowd: Crowd, port: int, path: str, k: int, cookie: str) -> list[Stream]:
    loop = asyncio.get_running_loop()
    request = (f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n"
               f"Cookie: {cookie}\r\n\r\n").encode()
    streams: list[Stream] = []
    for first in range(0, k, BATCH):
        size = min(BATCH, k - first)
        made = await asyncio.gather(*(loop.create_connection(lambda: Stream(crowd, request), HOST, port)
                                      for _ in range(size)), return_exceptions=True)
        streams += [proto for got in made if not isinstance(got, BaseException) for proto in [got[1]]]
        await _wait(crowd, len(streams), READY_TIMEOUT, crowd.ready)
    return streams


async def _measure(server: Server, path: str, k: int, events: int, clinic: Clinic, owner: str,
                   slots: list[datetime], product: bool) -> dict[str, object]:
    # Like a browser, which opened the page first: the streams carry the page's cookie.
    cookie = "; ".join((await httpraw.fetch(server.port, httpraw.get("/healthz"))).cookies())
    crowd = Crowd()
    # Warm the server (first request of each worker) before the "before" reading.
    warm = await _open(crowd, server.port, path, 8, cookie)
    for s in warm:
        s.close()
    await asyncio.sleep(1.0)
    crowd = Crowd()
    rss0 = server_rss_kib(server.pid)
    t_open = time.monotonic()
    streams = await _open(crowd, server.port, path, k, cookie)
    open_s = time.monotonic() - t_open
    await asyncio.sleep(1.0)
    rss1 = server_rss_kib(server.pid)
    ready = crowd.ready
    delays: list[float] = []
    served: list[int] = []
    async with await psycopg.AsyncConnection.connect(owner) as conn:
        for e in range(events):
            booking, start = uuid.uuid4(), slots[e]
            crowd.marker = (f'data-start="{iso(start)}" data-state="taken"' if product
                            else str(booking)).encode()
            crowd.arrivals.append([])
            crowd.event = e
            async with conn.transaction():
                await conn.execute("set local role dentbook_owner")
                await conn.execute("select set_config('app.tenant_id', %s, true)", (str(clinic.id),))
                await conn.execute(INSERT_BOOKING, (
                    clinic.id, booking, clinic.doctors[0], clinic.visit, start, start, clinic.minutes,
                    "confirmed", "Fanout Patient", f"fanout-{booking.hex[:12]}@example.com"))
            committed = time.monotonic()
            await _wait(crowd, ready, 15.0 + k / 200, len(crowd.arrivals[e]))
            got = crowd.arrivals[e]
            delays += [t - committed for t in got]
            served.append(len(got))
            crowd.event = -1
            await asyncio.sleep(0.5)
    for s in streams:
        s.close()
    await asyncio.sleep(0.5)
    return {"k": k, "connected": len(streams), "ready": ready, "refused": crowd.refused,
            "open_seconds": round(open_s, 2), "served_per_event": served,
            "every_client": ready == k and all(n == k for n in served),
            "delay": summary_ms(delays), "rss_before_kib": rss0, "rss_after_kib": rss1,
            "kib_per_stream": (rss1 - rss0) / k if k else float("nan")}


async def run(ctx: Context) -> list[Row]:
    mode = ctx.mode
    clinic = make_clinic(ctx.db, "bench-fanout", doctors=1, hours="mon-sun 06:00-22:00")
    week = this_monday(clinic.zone) + timedelta(weeks=1)
    slots = clinic.starts(range(1, 2))
    per_run = mode.fanout_events
    path = (f"/{clinic.slug}/events?doctor={clinic.doctors[0]}&visit={clinic.visit}"
            f"&week={week.isoformat()}&lang=pl")
    rows: list[Row] = []
    used = 0
    for k in mode.fanout_k:
        figures: dict[str, dict[str, object]] = {}
        for name in ("minimal", "dentbook"):
            picked, used = slots[used:used + per_run], used + per_run
            if len(picked) < per_run:
                raise RuntimeError("not enough free slots in the fan-out week")
            if name == "dentbook":
                server = ctx.db.server_app(ctx.logs, ctx.secret)
                target = path
            else:
                server = uvicorn_server("minimal-sse", "bench.minimal_sse:app",
                                        base_env(DATABASE_URL=ctx.db.app), ctx.logs)
                target = "/events"
            with server:
                figures[name] = await _measure(server, target, k, per_run, clinic, ctx.db.owner,
                                               picked, product=name == "dentbook")
            print(f"    fanout K={k} {name}: {figures[name]}", flush=True)
        ours, base = figures["dentbook"], figures["minimal"]
        od, bd = ours["delay"], base["delay"]
        assert isinstance(od, dict) and isinstance(bd, dict)
        full = k == max(mode.fanout_k) and k >= 5000
        rows.append(Row(
            "fanout", f"K={k}: commit → client p50 / p99 / max (ms)",
            f"{ms(od['p50_ms'])} / {ms(od['p99_ms'])} / {ms(od['max_ms'])}",
            f"{ms(bd['p50_ms'])} / {ms(bd['p99_ms'])} / {ms(bd['max_ms'])} (minimal relay)",
            ratio(od["p99_ms"], bd["p99_ms"]), "p99 ours / minimal",
            "p99 < 250 ms at K=5000" if full else "",
            (od["p99_ms"] < 250 and bool(ours["every_client"])) if full else None,
            {"dentbook": ours, "minimal": base}))
        rows.append(Row(
            "fanout", f"K={k}: every client served; RSS per stream",
            f"{'yes' if ours['every_client'] else 'NO'} ({ours['served_per_event']} of {k}); "
            f"{float(ours['kib_per_stream']):.1f} KiB",  # type: ignore[arg-type]
            f"{'yes' if base['every_client'] else 'NO'}; "
            f"{float(base['kib_per_stream']):.1f} KiB",  # type: ignore[arg-type]
            ratio(float(ours["kib_per_stream"]), float(base["kib_per_stream"])),  # type: ignore[arg-type]
            "KiB/stream ours / minimal", "every client" if full else "",
            bool(ours["every_client"]) if full else None))
    return rows
