"""Fan-out: K open SSE calendars on one doctor; a booking of that doctor is committed (as the
owner role); how long until each client has the changed cell, and what each open stream costs.

Delay: from right after COMMIT returns (time.monotonic in this process) to the moment this
process reads the fragment on each stream (p50 / p99 / max, over every client and event).
Memory: server RSS (supervisor + workers, from /proc; the local Stripe left out) after the K
streams are open, minus before, over K; streams per process from each process's open file
descriptors, after minus before. Baseline: the same K on `bench/minimal_sse.py` (raw ASGI
under the same uvicorn with 2 workers, relaying the NOTIFY without reading or rendering
anything). Each (server, K) runs on a freshly started server whose soft open-file limit
was raised to the hard one (`Server.start`), as this client's was (`run.main`).

The client is one asyncio process of raw sockets (one Protocol per stream), on the same two
cores. Most clients arrive without any cookie, as first visits do (a calendar's stream is
opened right after the page, before a returning visitor's cookie matters); every tenth
carries the cookie of an earlier visit. Each client records its response's header block
(bytes) and how many Set-Cookie headers it got: a response that carries other visitors'
cookies (headers shared between requests) shows as more than one, and as a header block
that grows with the streams opened before it.

From the K measured, the largest one at which every client was served and the p99 stayed
within P99_GOAL times the minimal relay's is reported as where each process should stop
accepting streams (in streams per process), when the run can tell.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from bench import httpraw
from bench.common import (
    HOST,
    Row,
    Server,
    base_env,
    cmdline,
    ms,
    nofile_limit,
    open_fds,
    percentile,
    raise_nofile,
    ratio,
    server_pids,
    server_rss_kib,
    summary_ms,
    uvicorn_server,
)
from bench.data import INSERT_BOOKING, Clinic, Context, iso, make_clinic, this_monday

BATCH = 250  # streams opened at once (then wait until each has its first message)
READY_TIMEOUT = 60.0
COOKIE_EVERY = 10  # every 10th client is a returning visitor with a cookie; 90 % arrive without
RETURNING_COOKIES = 8  # distinct earlier visits the returning clients take their cookie from
# Issue 18's goals, at GOAL_K streams on one doctor, against the minimal relay of the same run.
GOAL_K = 10_000
P99_GOAL = 1.5
RSS_GOAL = 1.25
# A response's header block must fit a reverse proxy's default header buffer (nginx:
# proxy_buffer_size, one 4 KiB page); beyond it the proxy answers 502.
HEADER_LIMIT = 4096


@dataclass(frozen=True)
class Head:
    """One client's response head, as it arrived."""

    cookie: bool  # the client sent a cookie
    status: int
    size: int  # bytes: status line, headers and the blank line
    set_cookies: int


@dataclass
class Crowd:
    """What all streams share: the current marker and the arrival times per event."""

    marker: bytes = b""
    event: int = -1
    arrivals: list[list[float]] = field(default_factory=list)
    heads: list[Head] = field(default_factory=list)
    ready: int = 0
    refused: int = 0  # answered, but not 200
    dropped: int = 0  # closed before answering
    lost: int = 0
    waiter: asyncio.Future[None] | None = None
    want: int = 0

    @property
    def settled(self) -> int:
        """Streams whose opening is over, one way or the other."""
        return self.ready + self.refused + self.dropped

    def poke(self, count: int) -> None:
        if self.waiter is not None and not self.waiter.done() and count >= self.want:
            self.waiter.set_result(None)


class Stream(asyncio.Protocol):
    """One SSE client: records the response head, finds the end of the first message, then
    watches for the marker."""

    def __init__(self, crowd: Crowd, request: bytes, cookie: bool) -> None:
        self.crowd, self.request, self.cookie = crowd, request, cookie
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.tail = b""
        self.head_end = -1
        self.opening_over = False
        self.seen = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        crowd = self.crowd
        if not self.opening_over:
            self.buf += data
            if self.head_end < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.head_end = end + 4
                head = self.buf[:self.head_end]
                status = int(head[9:12]) if head[9:12].isdigit() else 0
                set_cookies = sum(1 for line in head.split(b"\r\n")
                                  if line[:11].lower() == b"set-cookie:")
                crowd.heads.append(Head(self.cookie, status, len(head), set_cookies))
                if status != 200:
                    self.opening_over, self.buf = True, b""  # settled: nothing more to read
                    crowd.refused += 1
                    crowd.poke(crowd.settled)
                    if self.transport is not None:
                        self.transport.close()
                    return
            if self.buf.find(b"\n\n", self.head_end) >= 0:
                self.opening_over, self.buf = True, b""
                crowd.ready += 1
                crowd.poke(crowd.settled)
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
        if not self.opening_over:
            self.opening_over = True
            self.crowd.dropped += 1
            self.crowd.poke(self.crowd.settled)

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


def _request(path: str, cookie: str) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n"
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    return (head + "\r\n").encode()


async def _open(crowd: Crowd, port: int, path: str, k: int,
                cookies: list[str]) -> tuple[list[Stream], int]:
    """Open k streams, client i with cookie `cookies[..]` when i % COOKIE_EVERY == 0;
    (the streams connected, how many connections failed)."""
    loop = asyncio.get_running_loop()
    bare = _request(path, "")
    returning = [_request(path, c) for c in cookies]
    streams: list[Stream] = []
    failed = 0
    for first in range(0, k, BATCH):
        picks = [(returning[(i // COOKIE_EVERY) % len(returning)], True)
                 if i % COOKIE_EVERY == 0 else (bare, False) for i in range(first, min(k, first + BATCH))]
        made = await asyncio.gather(*(loop.create_connection(
            lambda req=req, c=c: Stream(crowd, req, c), HOST, port)  # type: ignore[misc]
            for req, c in picks), return_exceptions=True)
        for got in made:
            if isinstance(got, BaseException):
                failed += 1
            else:
                streams.append(got[1])
        await _wait(crowd, len(streams), READY_TIMEOUT, crowd.settled)
    return streams, failed


def _heads(heads: list[Head]) -> dict[str, Any]:
    """Per response head, summed up: sizes and Set-Cookie counts, for both kinds of client."""
    sizes = [h.size for h in heads]
    return {"responses": len(heads), "cookieless": sum(1 for h in heads if not h.cookie),
            "statuses": dict(Counter(h.status for h in heads)),
            "header_bytes_p50": percentile(sizes, 50) if sizes else 0,
            "header_bytes_max": max(sizes, default=0),
            "set_cookie_max": max((h.set_cookies for h in heads), default=0),
            "set_cookie_max_cookieless": max((h.set_cookies for h in heads if not h.cookie), default=0),
            "set_cookie_max_returning": max((h.set_cookies for h in heads if h.cookie), default=0)}


async def _returning_cookies(port: int) -> list[str]:
    """Cookies of earlier visits (what the server set on a first request), or a stand-in
    when it sets none (the minimal relay), so both servers get the same requests."""
    cookies = []
    for _ in range(RETURNING_COOKIES):
        got = "; ".join((await httpraw.fetch(port, httpraw.get("/healthz"))).cookies())
        cookies.append(got or "visit=returning")
    return cookies


async def _measure(server: Server, path: str, k: int, events: int, clinic: Clinic, owner: str,
                   slots: list[datetime], product: bool) -> dict[str, Any]:
    cookies = await _returning_cookies(server.port)
    crowd = Crowd()
    # Warm the server (first request of each worker) before the "before" reading.
    warm, _ = await _open(crowd, server.port, path, 8, cookies)
    for s in warm:
        s.close()
    await asyncio.sleep(1.0)
    crowd = Crowd()
    pids = server_pids(server.pid)
    limits = {pid: nofile_limit(pid) for pid in pids}
    # The processes that serve connections: uvicorn's spawned workers (or the server itself).
    workers = [pid for pid in pids if "multiprocessing.spawn" in cmdline(pid)] or [server.pid]
    fds0 = {pid: open_fds(pid) for pid in workers}
    rss0 = server_rss_kib(server.pid)
    t_open = time.monotonic()
    streams, failed = await _open(crowd, server.port, path, k, cookies)
    open_s = time.monotonic() - t_open
    await asyncio.sleep(1.0)
    rss1 = server_rss_kib(server.pid)
    per_process = sorted((open_fds(pid) - fds0[pid] for pid in workers), reverse=True)
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
    return {"k": k, "connected": len(streams), "connect_failed": failed, "ready": ready,
            "refused": crowd.refused, "dropped": crowd.dropped, "open_seconds": round(open_s, 2),
            "served_per_event": served,
            "every_client": ready == k and all(n == k for n in served),
            "delay": summary_ms(delays), "rss_before_kib": rss0, "rss_after_kib": rss1,
            "kib_per_stream": (rss1 - rss0) / k if k else float("nan"),
            "streams_per_process": per_process,
            "open_files_limit": sorted(set(limits.values()), key=str),
            "headers": _heads(crowd.heads)}


async def run(ctx: Context) -> list[Row]:
    mode = ctx.mode
    limit = raise_nofile()
    if limit < max(mode.fanout_k) + 200:
        raise RuntimeError(f"open-file limit {limit} is below K={max(mode.fanout_k)} streams "
                           "plus what the client needs besides (raise the hard limit: ulimit -Hn)")
    clinic = make_clinic(ctx.db, "bench-fanout", doctors=1, hours="mon-sun 06:00-22:00")
    week = this_monday(clinic.zone) + timedelta(weeks=1)
    slots = clinic.starts(range(1, 2))
    per_run = mode.fanout_events
    path = (f"/{clinic.slug}/events?doctor={clinic.doctors[0]}&visit={clinic.visit}"
            f"&week={week.isoformat()}&lang=pl")
    rows: list[Row] = []
    measured: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    used = 0
    for k in mode.fanout_k:
        figures: dict[str, dict[str, Any]] = {}
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
        measured.append((k, figures["dentbook"], figures["minimal"]))
        rows += _rows_for(k, figures["dentbook"], figures["minimal"])
    rows.append(_stop_point(measured))
    return rows


def _rows_for(k: int, ours: dict[str, Any], base: dict[str, Any]) -> list[Row]:
    od, bd = ours["delay"], base["delay"]
    goal = k == GOAL_K
    p99_ratio = ratio(od["p99_ms"], bd["p99_ms"])
    rss_ratio = ratio(float(ours["kib_per_stream"]), float(base["kib_per_stream"]))
    oh, bh = ours["headers"], base["headers"]

    def served(f: dict[str, Any]) -> str:
        refused = (f" ({f['refused']} refused, {f['dropped']} closed unanswered, "
                   f"{f['connect_failed']} not connected)"
                   if f["refused"] or f["dropped"] or f["connect_failed"] else "")
        return (f"{'yes' if f['every_client'] else 'NO'} ({f['served_per_event']} of {k}){refused}; "
                f"{float(f['kib_per_stream']):.1f} KiB; per process {f['streams_per_process']}")

    def heads(h: dict[str, Any]) -> str:
        return (f"header block p50 {h['header_bytes_p50']} B, max {h['header_bytes_max']} B; "
                f"Set-Cookie per response max {h['set_cookie_max']} "
                f"({h['cookieless']} of {h['responses']} cookieless)")

    return [
        Row("fanout", f"K={k}: commit → client p50 / p99 / max (ms)",
            f"{ms(od['p50_ms'])} / {ms(od['p99_ms'])} / {ms(od['max_ms'])}",
            f"{ms(bd['p50_ms'])} / {ms(bd['p99_ms'])} / {ms(bd['max_ms'])} (minimal relay)",
            p99_ratio, "p99 ours / minimal",
            f"≤ {P99_GOAL} and every client at K={GOAL_K}" if goal else "",
            (p99_ratio is not None and p99_ratio <= P99_GOAL and bool(ours["every_client"]))
            if goal else None,
            {"dentbook": ours, "minimal": base}),
        Row("fanout", f"K={k}: every client served; RSS per stream; streams per process",
            served(ours), served(base), rss_ratio, "KiB/stream ours / minimal",
            f"every client, RSS ≤ {RSS_GOAL}× at K={GOAL_K}" if goal else "",
            (bool(ours["every_client"]) and rss_ratio is not None and rss_ratio <= RSS_GOAL)
            if goal else None),
        Row("fanout", f"K={k}: response heads ({100 - 100 // COOKIE_EVERY} % of clients cookieless)",
            heads(oh), heads(bh), None, "",
            f"≤ 1 Set-Cookie per response, header block ≤ {HEADER_LIMIT} B",
            oh["set_cookie_max"] <= 1 and oh["header_bytes_max"] <= HEADER_LIMIT,
            {"dentbook": oh, "minimal": bh}),
    ]


def _stop_point(measured: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> Row:
    """The largest K that every client got within P99_GOAL x the minimal relay's p99,
    in streams per process; whether a larger K was measured and failed."""
    verdicts = []
    for k, ours, base in measured:
        r = ratio(ours["delay"]["p99_ms"], base["delay"]["p99_ms"])
        verdicts.append({"k": k, "p99_ratio": r, "every_client": ours["every_client"],
                         "streams_per_process": ours["streams_per_process"],
                         "ok": bool(ours["every_client"]) and r is not None and r <= P99_GOAL})
    passed = [v for v in verdicts if v["ok"]]
    stop: int | None = None
    if not passed:
        text = (f"not derivable from this run: no K kept p99 within {P99_GOAL}× the minimal "
                "relay's with every client served (the integrator sets it)")
    else:
        best = passed[-1]
        per_process = max(best["streams_per_process"], default=0)
        larger = [v for v in verdicts if v["k"] > best["k"]]
        if larger:
            stop = per_process
            text = (f"~{per_process} streams per process (K={best['k']} held; "
                    f"K={larger[0]['k']} did not)")
        else:
            text = (f"not reached: K={best['k']} held, up to {per_process} streams per process; "
                    "the limit is above that (the integrator sets it, at most the open-file limit)")
    return Row("fanout", f"where each process should stop accepting streams "
                         f"(largest K with p99 ≤ {P99_GOAL}× minimal, every client served)",
               text, "", None, "", "", None,
               {"stop_streams_per_process": stop, "per_k": verdicts})
