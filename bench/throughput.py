"""Booking throughput: holds per second on distinct slots through HTTP.

Three figures over the same number of requests and the same concurrency (C connections):
- the product (`dentbook serve --workers 2`): form, CSRF, validation, hold, Checkout
  Session created on the shipped local Stripe service, session id attached, 303;
- the BENCH-ONLY variant `bench/nostripe.py` (the same app with a stub Stripe client that
  answers at once): everything above but the Stripe round trip;
- baseline: `dentbook.hold_slot` alone through psycopg on C connections.
Reported: holds/s and the app/DB ratio (goals: GOALS).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from bench import httpraw
from bench.common import Row, base_env, ms, ratio, summary_ms, uvicorn_server
from bench.data import Clinic, Context, hold_params, iso, make_clinic, sql_holds

TIME_LIMIT = 120.0
# Issue 18's goals: app / DB holds per second with the local Stripe, and with Stripe stubbed.
GOALS = (0.50, 0.65)


def _slots(clinic: Clinic, weeks: range) -> list[tuple[uuid.UUID, datetime]]:
    """(doctor, start) pairs, consecutive ones on different doctors."""
    starts = clinic.starts(weeks)
    return [(d, s) for s in starts for d in clinic.doctors]


async def _http(port: int, clinic: Clinic, slots: list[tuple[uuid.UUID, datetime]], total: int,
                connections: int, tag: str) -> httpraw.LoadResult:
    doctor, start = slots[-1]
    cookie, token = await httpraw.browser_session(port, clinic.page(doctor, start=iso(start)))

    def make(i: int) -> bytes:
        doctor, start = slots[i]
        return httpraw.post_form(f"/{clinic.slug}/bookings", {
            "doctor_id": str(doctor), "visit_type_id": str(clinic.visit), "start": iso(start),
            "name": f"Throughput Patient {i}", "email": f"tput-{tag}-{i}@example.com",
            "phone": "+48 600 100 200", "_csrf_token": token}, cookie)

    # Warm-up (both workers: templates, pool, Stripe client), on slots of its own.
    await httpraw.load(port, lambda i: make(total + i), 2 * connections, connections, 30)
    return await httpraw.load(port, make, total, connections, TIME_LIMIT, ok=lambda r: r.status == 303)


def _figures(res: httpraw.LoadResult) -> dict[str, object]:
    return {"holds_per_s": res.rate, "latency": summary_ms(res.latencies), "statuses": dict(res.statuses),
            "errors": res.errors, "seconds": res.elapsed, "completed": res.completed_in_time}


async def run(ctx: Context) -> list[Row]:
    mode = ctx.mode
    n, c = mode.throughput_requests, mode.throughput_connections
    # One clinic per variant: hold_slot counts the clinic's active holds (per e-mail and per
    # client address) at every hold, so each variant starts from the same empty clinic.
    clinics = [make_clinic(ctx.db, f"bench-throughput-{v}", doctors=8, hours="mon-sun 07:00-21:00")
               for v in ("sql", "stripe", "nostripe")]
    chunks = [_slots(cl, range(1, 26)) for cl in clinics]
    if len(chunks[0]) < n + 2 * c:
        raise RuntimeError(f"only {len(chunks[0])} slots for {n + 2 * c} holds")

    # Baseline: the SQL function alone, C connections.
    calls = [hold_params(clinics[0], d, s, f"tput-sql-{i}@example.com")
             for i, (d, s) in enumerate(chunks[0][:n + 2 * c])]
    await sql_holds(ctx.db, clinics[0].id, calls[n:n + 2 * c], c, 30)  # warm-up
    results, elapsed = await sql_holds(ctx.db, clinics[0].id, calls[:n], c, TIME_LIMIT)
    held = [t for o, t, _ in results if o == "held"]
    sql = {"holds_per_s": len(held) / elapsed, "latency": summary_ms(held),
           "outcomes": {o: sum(1 for x, _, _ in results if x == o) for o in {x for x, _, _ in results}}}

    with ctx.db.server_app(ctx.logs, ctx.secret) as server:
        stripe = _figures(await _http(server.port, clinics[1], chunks[1], n, c, "stripe"))
    env = base_env(DATABASE_URL=ctx.db.app, DENTBOOK_SECRET_KEY=ctx.secret,
                   DENTBOOK_MAX_HOLDS_PER_IP="1000000", DENTBOOK_MAX_HOLDS_PER_EMAIL="1000000",
                   STRIPE_SECRET_KEY="sk_test_bench_stub", STRIPE_WEBHOOK_SECRET="whsec_bench_stub")
    with uvicorn_server("nostripe", "bench.nostripe:create_app", env, ctx.logs, factory=True) as server:
        nostripe = _figures(await _http(server.port, clinics[2], chunks[2], n, c, "nostripe"))

    rows = []
    base = f"{sql['holds_per_s']:.0f}/s (hold_slot, {c} conns)"
    for label, fig, goal in (("HTTP + local Stripe (product)", stripe, GOALS[0]),
                             ("HTTP, stub Stripe (bench-only variant)", nostripe, GOALS[1])):
        lat = fig["latency"]
        assert isinstance(lat, dict)
        rate = float(fig["holds_per_s"])  # type: ignore[arg-type]
        r = ratio(rate, float(sql["holds_per_s"]))  # type: ignore[arg-type]
        rows.append(Row(
            "throughput", f"{label}, {c} conns, {n} holds",
            f"{rate:.0f} holds/s (p50 {ms(lat['p50_ms'])}, p99 {ms(lat['p99_ms'])} ms)",
            base, r, "app / DB holds per second", f"≥ {goal:.2f}", r is not None and r >= goal,
            {"http": fig, "sql": sql}))
    return rows
