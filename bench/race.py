"""Race: N browsers book the same slot at the same instant, through HTTP.

Measured: how many won (must be exactly 1) and the latency of the 409 answers, from the
moment each request was written to its full answer. Baseline: the same N attempts on
another slot calling `dentbook.hold_slot` directly through psycopg, over as many
connections as the app has (2 workers x pool 10), timed from the common start; attempts
not started within 120 s are counted as not run. Every answer is counted: besides 303 and
409 the app may answer 503 (pool timeout), the SQL may fail with 40P01 (deadlock).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

from bench import httpraw
from bench.common import Row, ms, ratio, summary_ms
from bench.data import APP_POOL, Clinic, Context, count_active, hold_params, iso, make_clinic, sql_holds

BROWSERS = 32  # distinct cookie + CSRF token pairs, used round-robin by the N attempts
# Issue 18's goal: the p99 of the HTTP 409s within this many times the p99 of the SQL function's
# own conflicts (hold_slot on the app's pool size of connections), same run, N=1000.
RACE_GOAL = 2.0


def form(clinic: Clinic, start: str, token: str, email: str, name: str) -> dict[str, str]:
    return {"doctor_id": str(clinic.doctors[0]), "visit_type_id": str(clinic.visit), "start": start,
            "name": name, "email": email, "phone": "", "_csrf_token": token}


async def _http_race(port: int, clinic: Clinic, start: str, n: int, tag: str) -> dict[str, object]:
    doctor = clinic.doctors[0]
    sessions = [await httpraw.browser_session(port, clinic.page(doctor, start=start))
                for _ in range(min(n, BROWSERS))]
    requests = []
    for i in range(n):
        cookie, token = sessions[i % len(sessions)]
        requests.append(httpraw.post_form(
            f"/{clinic.slug}/bookings",
            form(clinic, start, token, f"race-{tag}-{i}@example.com", f"Race Patient {i}"), cookie))
    conns = await httpraw.open_many(port, n)
    try:
        answers = await httpraw.burst(conns, requests, limit_s=120)
    finally:
        for c in conns:
            c.close()
    statuses: Counter[int | str] = Counter(a.status if a else "error" for a, _ in answers)
    losers = [t for a, t in answers if a is not None and a.status == 409]
    return {"statuses": dict(statuses), "winners": statuses.get(303, 0),
            "conflict": summary_ms(losers), "all": summary_ms([t for _, t in answers])}


async def _sql_race(ctx: Context, clinic: Clinic, start: datetime, n: int) -> dict[str, object]:
    doctor = clinic.doctors[1]
    calls = [hold_params(clinic, doctor, start, f"sqlrace-{n}-{i}@example.com") for i in range(n)]
    results, _ = await sql_holds(ctx.db, clinic.id, calls, APP_POOL, time_limit=120)
    outcomes = Counter(o for o, _, _ in results)
    return {"outcomes": dict(outcomes), "winners": outcomes.get("held", 0),
            "conflict": summary_ms([since for o, _, since in results if o == "taken"]),
            "committed": count_active(ctx.db, clinic, doctor, start)}


async def run(ctx: Context) -> list[Row]:
    clinic = make_clinic(ctx.db, "bench-race", doctors=2)
    slots = clinic.starts(range(1, 2))
    rows: list[Row] = []
    with ctx.db.server_app(ctx.logs, ctx.secret) as server:
        # Warm-up: templates, pools, the Stripe client of both workers.
        for i in range(6):
            warm = iso(slots[-1 - i])
            cookie, token = await httpraw.browser_session(server.port, clinic.page(clinic.doctors[0],
                                                                                  start=warm))
            await httpraw.fetch(server.port, httpraw.post_form(
                f"/{clinic.slug}/bookings", form(clinic, warm, token, f"warm{i}@example.com", "Warm Up"),
                cookie))
        for k, n in enumerate(ctx.mode.race_n):
            start = slots[k]
            http = await _http_race(server.port, clinic, iso(start), n, str(n))
            http["committed"] = count_active(ctx.db, clinic, clinic.doctors[0], start)
            sql = await _sql_race(ctx, clinic, start, n)
            await asyncio.sleep(0.5)
            h, s = http["conflict"], sql["conflict"]
            assert isinstance(h, dict) and isinstance(s, dict)
            hs = http["statuses"]
            so = dict(sql["outcomes"])  # type: ignore[call-overload]
            so["not run (time bound)"] = n - sum(so.values())
            rows.append(Row(
                "race", f"N={n}: winners; every answer",
                f"{http['winners']} ({http['committed']} active in the DB); " + _counts(hs),  # type: ignore[arg-type]
                f"{sql['winners']} ({sql['committed']} active); " + _counts(so), None, "",
                "exactly 1", http["winners"] == 1 and http["committed"] == 1,
                {"http": http, "sql": sql}))
            r = ratio(h["p99_ms"], s["p99_ms"])
            rows.append(Row(
                "race", f"N={n}: latency of the 409s (SQL: 23P01s) p50 / p99 / max (ms)",
                f"{ms(h['p50_ms'])} / {ms(h['p99_ms'])} / {ms(h['max_ms'])}",
                f"{ms(s['p50_ms'])} / {ms(s['p99_ms'])} / {ms(s['max_ms'])} (hold_slot, {APP_POOL} conns)",
                r, "p99 HTTP / p99 SQL",
                f"≤ {RACE_GOAL} at N=1000" if n == 1000 else "",
                (r is not None and r <= RACE_GOAL) if n == 1000 else None,
                {"statuses": http["statuses"]}))
    return rows


def _counts(counts: dict[object, int]) -> str:
    names = {"taken": "23P01", "40P01": "40P01 deadlock", "held": "held"}
    return ", ".join(f"{names.get(str(k), k)}×{v}" for k, v in sorted(counts.items(), key=str) if v)
