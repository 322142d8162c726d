"""Pages: requests/s and latency of the clinic page and the grid fragment (`/{slug}/slots`)
for a week of 4 doctors with realistic bookings, against `/healthz` of the same server
(the framework's ceiling). Load generator: `bench/httpraw.py` (raw asyncio HTTP/1.1,
a fixed number of keep-alive connections and a fixed number of requests)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

from bench import httpraw
from bench.common import Row, Server, ms, ratio, summary_ms
from bench.data import Context, add_bookings, make_clinic, this_monday

TIME_LIMIT = 60.0


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
        "grid fragment /{slug}/slots": lambda i: httpraw.get(
            f"/{clinic.slug}/slots?doctor={clinic.doctors[i % 4]}&visit={clinic.visit}"
            f"&week={week.isoformat()}", extra=htmx),
        "clinic page /{slug}?doctor&visit&week": lambda i: httpraw.get(
            clinic.page(clinic.doctors[i % 4], week)),
    }
    with ctx.db.server_app(ctx.logs, ctx.secret) as server:
        figures = await _measure(server, endpoints, mode.page_requests, mode.page_connections)
    return _rows(figures, mode.page_connections)


async def _measure(server: Server, endpoints: dict[str, Callable[[int], bytes]], requests: int,
                   connections: int) -> dict[str, dict[str, object]]:
    figures: dict[str, dict[str, object]] = {}
    for name, make in endpoints.items():
        probe = await httpraw.fetch(server.port, make(0))
        if probe.status != 200:
            raise RuntimeError(f"{name}: HTTP {probe.status}")
        await httpraw.load(server.port, make, 100, connections, 30)  # warm-up
        res = await httpraw.load(server.port, make, requests, connections, TIME_LIMIT,
                                 ok=lambda r: r.status == 200)
        figures[name] = {"rps": res.rate, "latency": summary_ms(res.latencies),
                         "statuses": dict(res.statuses), "errors": res.errors,
                         "bytes": len(probe.body), "completed": res.completed_in_time,
                         "requests": len(res.latencies)}
    return figures


def _rows(figures: dict[str, dict[str, object]], connections: int) -> list[Row]:
    ceiling = figures["/healthz (ceiling)"]
    rows = []
    for name, fig in figures.items():
        lat = fig["latency"]
        assert isinstance(lat, dict)
        rps = float(fig["rps"])  # type: ignore[arg-type]
        base_rps = float(ceiling["rps"])  # type: ignore[arg-type]
        rows.append(Row(
            "pages", f"{name}, {connections} conns, {fig['bytes']} B",
            f"{rps:.0f} req/s, p50 {ms(lat['p50_ms'])} / p99 {ms(lat['p99_ms'])} ms",
            f"{base_rps:.0f} req/s (/healthz)", ratio(rps, base_rps), "req/s vs /healthz",
            raw=fig))
    return rows
