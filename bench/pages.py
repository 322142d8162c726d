"""Pages: requests/s and latency of the clinic page and the grid fragment (`/{slug}/slots`)
for a week of 4 doctors with realistic bookings, against `/healthz` of the same server
(the framework's ceiling), with the hit rate of the week-grid cache (from `/metrics` of each
worker process). Load generator: `bench/httpraw.py` (raw asyncio HTTP/1.1,
a fixed number of keep-alive connections and a fixed number of requests)."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from datetime import timedelta

from bench import httpraw
from bench.common import Row, Server, ms, ratio, summary_ms
from bench.data import Context, add_bookings, make_clinic, this_monday

TIME_LIMIT = 60.0
GRID, PAGE = "grid fragment /{slug}/slots", "clinic page /{slug}?doctor&visit&week"
GOALS = {GRID: 0.30, PAGE: 0.25}  # issue 18's: req/s against /healthz of the same server


async def run(ctx: Context) -> list[Row]:
    mode = ctx.mode
    clinic = make_clinic(ctx.db, "bench-pages", doctors=4)
    rng = random.Random(7)
    for doctor in clinic.doctors:
        # Next week (the one measured) 60 % taken, the following weeks 30 %, a quarter of
        # the taken time as pending holds.
        week1 = clinic.starts(range(1, 2))
        later = clinic.starts(range(2, 9))
        taken = rng.sample(week1, int(0.6 * len(week1))) + rng.sample(later, int(0.3 * len(later)))
        held = set(rng.sample(taken, len(taken) // 4))
        add_bookings(ctx.db, clinic, doctor, [s for s in taken if s not in held])
        add_bookings(ctx.db, clinic, doctor, sorted(held), status="pending")
    week = this_monday(clinic.zone) + timedelta(weeks=1)
    htmx = "HX-Request: true\r\n"
    endpoints: dict[str, Callable[[int], bytes]] = {
        "/healthz (ceiling)": lambda i: httpraw.get("/healthz"),
        GRID: lambda i: httpraw.get(
            f"/{clinic.slug}/slots?doctor={clinic.doctors[i % 4]}&visit={clinic.visit}"
            f"&week={week.isoformat()}", extra=htmx),
        PAGE: lambda i: httpraw.get(
            clinic.page(clinic.doctors[i % 4], week)),
    }
    with ctx.db.server_app(ctx.logs, ctx.secret, DENTBOOK_METRICS="local") as server:
        figures = await _measure(server, endpoints, mode.page_requests, mode.page_connections)
    return _rows(figures, mode.page_connections)


async def _measure(server: Server, endpoints: dict[str, Callable[[int], bytes]], requests: int,
                   connections: int) -> dict[str, dict[str, object]]:
    figures: dict[str, dict[str, object]] = {}
    # A keep-alive connection stays with one worker process: one per process found, for the
    # cache counters of all of them before and after each measurement.
    scrapers = await _one_per_process(server.port)
    try:
        for name, make in endpoints.items():
            probe = await httpraw.fetch(server.port, make(0))
            if probe.status != 200:
                raise RuntimeError(f"{name}: HTTP {probe.status}")
            await httpraw.load(server.port, make, 100, connections, 30)  # warm-up
            before = await _grid_lookups(scrapers)
            stop = asyncio.Event()
            warm = asyncio.create_task(_keep_open(scrapers, stop))
            res = await httpraw.load(server.port, make, requests, connections, TIME_LIMIT,
                                     ok=lambda r: r.status == 200)
            stop.set()
            await warm
            hits, misses = (a - b for a, b in zip(await _grid_lookups(scrapers), before, strict=True))
            figures[name] = {"rps": res.rate, "latency": summary_ms(res.latencies),
                             "statuses": dict(res.statuses), "errors": res.errors,
                             "bytes": len(probe.body), "completed": res.completed_in_time,
                             "requests": len(res.latencies),
                             "grid_cache": {"hits": hits, "misses": misses,
                                            "processes": len(scrapers)}}
    finally:
        for conn in scrapers:
            conn.close()
    return figures


async def _one_per_process(port: int, tries: int = 16) -> list[httpraw.Connection]:
    """Keep-alive connections to /metrics, one per worker process reached in `tries`."""
    found: dict[str, httpraw.Connection] = {}
    for _ in range(tries):
        conn = await httpraw.Connection.open(port)
        pid = re.search(r'^dentbook_process_info\{pid="(\d+)"\}', await _metrics(conn), re.M)
        if pid is None:
            raise RuntimeError("/metrics names no process")
        if pid.group(1) in found:
            conn.close()
        else:
            found[pid.group(1)] = conn
    return list(found.values())


async def _keep_open(conns: list[httpraw.Connection], stop: asyncio.Event) -> None:
    """Scrape now and then while a measurement runs: the server closes a keep-alive
    connection idle for 5 s, and these must stay open to reach the same processes."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 2.0)
        except TimeoutError:
            await _grid_lookups(conns)


async def _metrics(conn: httpraw.Connection) -> str:
    page = await conn.request(httpraw.get("/metrics"))
    if page.status != 200:
        raise RuntimeError(f"/metrics: HTTP {page.status}")
    return page.body.decode()


async def _grid_lookups(conns: list[httpraw.Connection]) -> tuple[float, float]:
    """The week-grid caches' (hits, misses) so far, summed over the processes `conns` reach."""
    hits = misses = 0.0
    for conn in conns:
        found = dict(re.findall(r'^dentbook_grid_cache_lookups_total\{result="(\w+)"\} (\S+)$',
                                await _metrics(conn), re.M))
        hits += float(found.get("hit", 0))
        misses += float(found.get("miss", 0))
    return hits, misses


def _rows(figures: dict[str, dict[str, object]], connections: int) -> list[Row]:
    ceiling = figures["/healthz (ceiling)"]
    rows = []
    for name, fig in figures.items():
        lat = fig["latency"]
        assert isinstance(lat, dict)
        rps = float(fig["rps"])  # type: ignore[arg-type]
        base_rps = float(ceiling["rps"])  # type: ignore[arg-type]
        cache = fig["grid_cache"]
        assert isinstance(cache, dict)
        looked = cache["hits"] + cache["misses"]
        hit_rate = f"; grid cache hits {100 * cache['hits'] / looked:.1f} %" if looked else ""
        r = ratio(rps, base_rps)
        goal = GOALS.get(name)
        rows.append(Row(
            "pages", f"{name}, {connections} conns, {fig['bytes']} B",
            f"{rps:.0f} req/s, p50 {ms(lat['p50_ms'])} / p99 {ms(lat['p99_ms'])} ms{hit_rate}",
            f"{base_rps:.0f} req/s (/healthz)", r, "req/s vs /healthz",
            f"≥ {goal:.2f}" if goal else "", (r is not None and r >= goal) if goal else None,
            raw=fig))
    return rows
