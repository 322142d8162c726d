"""Cost growth: availability render time and hold latency as bookings grow 10x and 100x
(full: 10 k -> 100 k -> 1 M rows across 1,000 clinics of 2 doctors).

The history grows where a patient's request reads it: each of the measured clinic's two
doctors (`growth-0`) holds MEASURED_SHARE (10 %) of all rows (full: 1 k -> 10 k -> 100 k
bookings each, spread over the past years), the rest is shared out evenly among the other
clinics' doctors. Rows are generated with `generate_series` as the owner role, one clinic
at a time with `app.tenant_id` set (so row level security, constraints and the audit and
NOTIFY triggers all apply), then VACUUM ANALYZE. Per doctor: 4/5 of the rows in the past
(confirmed, expired, released), 1/5 from week 9 on (confirmed, some pending holds; at most
FUTURE_CAP of them, half the slots of the booking window, beyond which they go to the past
too). The measured clinic also has a realistic next week (60 % taken); its weeks 1-8 get
no generated rows, so each size measures the same week and the same kind of free slot.

At each size, on a freshly started `dentbook serve --workers 2`: the grid fragment over HTTP
and `public_busy` over SQL (the availability read), a hold over HTTP (with the local Stripe)
and `hold_slot` over SQL, sequentially; and EXPLAIN (ANALYZE, BUFFERS) of the availability
query and of the hold's statements, saved to bench/results/explain-<rows>.txt. Buffers are
the execution's (the plan's root node, children included), never the planner's catalog
reads, which the text lists separately under "Planning:".
Baseline: the smallest size of the same run.
"""

from __future__ import annotations

import math
import random
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench import httpraw
from bench.common import Row, ms, ratio, summary_ms
from bench.data import (
    Clinic,
    Context,
    Db,
    add_bookings,
    hold_params,
    iso,
    make_clinic,
    sql_hold,
    this_monday,
)
from dentbook import admin

DOCTORS_PER_CLINIC = 2
CHUNK = 50  # clinics per transaction while generating rows
FLAT = 1.3  # "no cost growth": at most this times the smallest size's p50 (issue 18's goal)
# Buffers may grow by a few pages without the cost growing: one more B-tree level per
# index descent once an index outgrows its current height.
BUFFER_SLACK = 4
MEASURED_SHARE = 0.10  # of all rows, for each doctor of the measured clinic
SLOTS_PER_DAY = 20  # half-hour slots from 08:00, Warsaw time
FUTURE_SLOTS = 3220  # 161 days from week 9 on, the rest of the 26-week booking window
FUTURE_CAP = FUTURE_SLOTS // 2  # a doctor's future bookings stay bounded by the window

CLINICS = """
insert into dentbook.tenants (slug, name)
select 'growth-' || i, 'Growth clinic ' || i from generate_series(1, {n}) i;
insert into dentbook.doctors (tenant_id, name)
select t.id, 'dr Growth ' || j from dentbook.tenants t, generate_series(0, {doctors} - 1) j
where t.slug ~ '^growth-[0-9]+$' and t.slug <> 'growth-0';
insert into dentbook.visit_types (tenant_id, name_pl, name_en, duration_minutes, deposit_minor)
select t.id, 'Przegląd', 'Check-up', 30, 5000 from dentbook.tenants t
where t.slug ~ '^growth-[0-9]+$' and t.slug <> 'growth-0';
insert into dentbook.working_hours (tenant_id, doctor_id, weekday, start_time, end_time)
select d.tenant_id, d.id, wd, '08:00', '18:00' from dentbook.doctors d
join dentbook.tenants t on t.id = d.tenant_id, generate_series(1, 5) wd
where t.slug ~ '^growth-[0-9]+$' and t.slug <> 'growth-0';
"""

# Booking j (0, 1, ...) of a doctor: j % 5 = 4 and j / 5 < FUTURE_CAP -> future slot j / 5
# (from week 9 on), else past slot j. Slot numbers are spread by multiplying with a number
# prime to the slot count, so they stay distinct per doctor ({past_slots} past slots, at
# least one per row). Rows lo..hi-1 of a doctor are added at a stage: the measured clinic's
# doctors (growth-0) get {m_lo}..{m_hi}; the others, ranked r = 2 (n - 1) + k (clinic n,
# its doctor k), get their even share floor(T (r + 1) / N) - floor(T r / N) of the
# {others} doctors' total T, growing from {o_lo} to {o_hi}.
GROW = """
do $$
declare t record;
begin
  for t in select id, substring(slug from '[0-9]+$')::bigint as n from dentbook.tenants
           where slug ~ '^growth-[0-9]+$' order by slug offset {offset} limit {limit} loop
    perform set_config('app.tenant_id', t.id::text, true);
    insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during, status,
        hold_expires_at, patient_name, patient_email, client_ip, amount_minor, currency)
    select d.tenant_id, d.id, v.id, tstzrange(s.at, s.at + interval '30 minutes', '[)'),
        s.status, case when s.status = 'pending' then now() + interval '25 minutes'
                       else s.at - interval '1 day' end,
        'Patient ' || j, 'patient' || j || '.' || left(d.id::text, 8) || '@example.com',
        ('10.1.' || (j % 200) || '.' || (j % 250))::inet, 5000, 'pln'
    from (select x.*, row_number() over (order by x.id) - 1 as k
          from dentbook.doctors x where x.active) d
    cross join lateral (select id from dentbook.visit_types x where x.tenant_id = d.tenant_id
                        order by x.created_at, x.id limit 1) v
    cross join lateral (
        select case when t.n = 0 then {m_lo}::bigint
                    else {o_lo}::bigint * (r + 1) / {others} - {o_lo}::bigint * r / {others} end as lo,
               case when t.n = 0 then {m_hi}::bigint
                    else {o_hi}::bigint * (r + 1) / {others} - {o_hi}::bigint * r / {others} end as hi
        from (select {per_clinic} * (t.n - 1) + d.k as r) ranked) c
    cross join generate_series(c.lo, c.hi - 1) j
    cross join lateral (select j % 5 = 4 and j / 5 < {future_cap} as future,
                               (j / 5 * 787 % {future_slots})::int as f,
                               (j * 7919 % {past_slots})::int as p) n
    cross join lateral (
        select case when n.future
                 then ((current_date + 63 + n.f / {per_day})::timestamp + interval '8 hours'
                       + (n.f % {per_day}) * interval '30 minutes') at time zone 'Europe/Warsaw'
                 else ((current_date - 3 - n.p / {per_day})::timestamp + interval '8 hours'
                       + (n.p % {per_day}) * interval '30 minutes') at time zone 'Europe/Warsaw'
               end as at,
               case when n.future then (case when j % 10 = 9 then 'pending' else 'confirmed' end)
                    when j % 10 < 7 then 'confirmed' when j % 10 < 9 then 'expired'
                    else 'released' end as status) s;
  end loop;
end $$
"""

BUSY_BODY = """
select during, case when status = 'pending' then hold_expires_at end from dentbook.bookings
where doctor_id = $1
  and status in ('pending', 'confirmed')
  and starts_at >= $2 - dentbook.longest_visit() and starts_at < $3
  and (status = 'confirmed' or hold_expires_at > now())
  and during && tstzrange($2, $3, '[)')
"""
EXPIRE_STEP = """
update dentbook.bookings b set status = 'expired'
where b.doctor_id = $1 and b.status = 'pending' and b.hold_expires_at <= now()
  and b.starts_at >= $2 - dentbook.longest_visit() and b.starts_at < $2 + interval '30 minutes'
  and b.during && tstzrange($2, $2 + interval '30 minutes', '[)')
"""
EMAIL_STEP = """
select count(*) from dentbook.bookings b where b.status = 'pending' and b.hold_expires_at > now()
  and b.email_key = lower($1)
"""
IP_STEP = """
select count(*) from dentbook.bookings b where b.status = 'pending'
  and b.hold_expires_at > now() and b.client_ip = $1
"""


def _setup(db: Db, clinics: int) -> Clinic:
    clinic = make_clinic(db, "growth-0", doctors=DOCTORS_PER_CLINIC)
    rng = random.Random(11)
    week1 = clinic.starts(range(1, 2))
    add_bookings(db, clinic, clinic.doctors[0], sorted(rng.sample(week1, int(0.6 * len(week1)))))
    with psycopg.connect(db.owner, autocommit=True) as conn:
        conn.execute(CLINICS.format(n=int(clinics) - 1, doctors=DOCTORS_PER_CLINIC).encode())
    return clinic


def _measured_rows(size: int) -> int:
    """Rows of each of the measured clinic's doctors when the whole database holds `size`."""
    return round(size * MEASURED_SHARE)


def _other_rows(size: int) -> int:
    """Rows shared out among all other doctors."""
    return size - DOCTORS_PER_CLINIC * _measured_rows(size)


def _past_slots(largest: int) -> int:
    """Past slots per doctor: two years at least, and one per row of the measured doctors at
    the largest size (so no two of a doctor's past bookings overlap); a count prime to the
    spreading factor 7919, so the spread is one-to-one."""
    days = max(730, math.ceil(_measured_rows(largest) / SLOTS_PER_DAY))
    while math.gcd(7919, days * SLOTS_PER_DAY) != 1:
        days += 1
    return days * SLOTS_PER_DAY


def _grow(db: Db, clinics: int, before: int, size: int, past_slots: int) -> tuple[float, int]:
    """Grow the database from `before` to `size` rows (each doctor from its share of the one
    to its share of the other); (seconds taken, VACUUM ANALYZE included; rows now)."""
    t0 = time.monotonic()
    others = (clinics - 1) * DOCTORS_PER_CLINIC
    with psycopg.connect(db.owner, autocommit=True) as conn:
        conn.execute("set role dentbook_owner")
        for offset in range(0, clinics, CHUNK):
            conn.execute(GROW.format(
                offset=offset, limit=CHUNK, m_lo=_measured_rows(before), m_hi=_measured_rows(size),
                o_lo=_other_rows(before), o_hi=_other_rows(size), others=others,
                per_clinic=DOCTORS_PER_CLINIC, future_cap=FUTURE_CAP, future_slots=FUTURE_SLOTS,
                past_slots=past_slots, per_day=SLOTS_PER_DAY).encode())
        conn.execute("reset role")
        conn.execute("vacuum analyze dentbook.bookings")
        conn.execute("vacuum analyze dentbook.audit_log")
        row = conn.execute("select count(*) from dentbook.bookings").fetchone()
    return time.monotonic() - t0, int(row[0]) if row else 0


STEPS = {  # key: (label, statement, parameter types)
    "busy": ("public_busy body (availability of one doctor-week)", BUSY_BODY,
             "uuid, timestamptz, timestamptz"),
    "expire": ("hold_slot: just-in-time expiry of lapsed holds on the interval", EXPIRE_STEP,
               "uuid, timestamptz"),
    "email": ("hold_slot: active holds per e-mail", EMAIL_STEP, "text"),
    "ip": ("hold_slot: active holds per client address", IP_STEP, "inet"),
}
PLANS = ("force_custom_plan", "force_generic_plan")
HOLD_STEPS = ("expire", "email", "ip")


def _explain(db: Db, clinic: Clinic, start: datetime,
             span: tuple[datetime, datetime]) -> tuple[str, dict[tuple[str, str], str]]:
    """EXPLAIN (ANALYZE, BUFFERS) as the functions run them: owner role, the clinic set.
    The whole text (for the file) and each plan by (step, plan cache mode)."""
    doctor = clinic.doctors[0]
    out: list[str] = []
    plans: dict[tuple[str, str], str] = {}
    with psycopg.connect(db.owner) as conn:
        conn.execute("set role dentbook_owner")
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(clinic.id),))
        row = conn.execute("select count(*), count(*) filter (where doctor_id = %s)"
                           " from dentbook.bookings", (doctor,)).fetchone()
        out.append(f"-- bookings visible to the measured clinic: {row[0] if row else '?'}, "
                   f"of the measured doctor: {row[1] if row else '?'}")
        args = {"busy": (doctor, *span), "expire": (doctor, start),
                "email": ("patient1@example.com",), "ip": ("127.0.0.1",)}
        for key, (label, sql, types) in STEPS.items():
            placeholders = ", ".join(["%s"] * len(args[key]))
            for plan in PLANS:
                with conn.transaction(force_rollback=True):
                    conn.execute(f"set local plan_cache_mode = {plan}")
                    conn.execute(f"prepare q ({types}) as {sql}")
                    rows = psycopg.ClientCursor(conn).execute(
                        f"explain (analyze, buffers, costs off) execute q ({placeholders})",
                        args[key]).fetchall()
                    conn.execute("deallocate q")
                plans[key, plan] = "\n".join(str(r[0]) for r in rows)
                out.append(f"\n-- {label} [{plan}]\n" + plans[key, plan])
    return "\n".join(out) + "\n", plans


def execution_buffers(plan: str) -> int:
    """Shared blocks (hit + read) the execution touched: the `Buffers:` line of the plan's
    root node (indented two spaces; it includes its children's), cut off before the
    `Planning:` section, whose own `Buffers:` line counts the planner's catalog reads."""
    body = re.split(r"^Planning", plan, maxsplit=1, flags=re.MULTILINE)[0]
    line = re.search(r"^  Buffers: (.*)$", body, re.MULTILINE)
    shared = re.search(r"shared((?: \w+=\d+)+)", line.group(1)) if line else None
    if shared is None:
        return 0
    counts = dict(pair.split("=") for pair in shared.group(1).split())
    return int(counts.get("hit", 0)) + int(counts.get("read", 0))


def _plan_evidence(plans: dict[tuple[str, str], str]) -> dict[str, object]:
    """From the availability plan (custom): the index used, rows it fetched that the
    conditions then threw away (history read for nothing), execution time; and the
    execution buffers of the availability read and of the hold's lookups, both plan modes."""
    busy = plans["busy", "force_custom_plan"]
    m_index = re.search(r"(?:Index|Index Only|Bitmap Index) Scan (?:using|on) (\w+)", busy)
    m_time = re.search(r"Execution Time: ([\d.]+) ms", busy)
    removed = [int(x) for x in re.findall(r"Rows Removed by Filter: (\d+)", busy)]
    return {"index": m_index.group(1) if m_index else "NONE (seq scan?)",
            "rows_filtered_out": max(removed, default=0),
            "seq_scan": any("Seq Scan" in text for text in plans.values()),
            "busy_buffers": {plan: execution_buffers(plans["busy", plan]) for plan in PLANS},
            "hold_buffers": {plan: sum(execution_buffers(plans[step, plan]) for step in HOLD_STEPS)
                             for plan in PLANS},
            "execution_ms": float(m_time.group(1)) if m_time else float("nan")}


async def _measure(ctx: Context, db: Db, clinic: Clinic, size: int, stage: int) -> dict[str, object]:
    samples = ctx.mode.growth_samples
    doctor = clinic.doctors[0]
    week = this_monday(clinic.zone) + timedelta(weeks=1)
    span = (datetime.combine(week, datetime.min.time(), clinic.zone).astimezone(UTC),
            datetime.combine(week + timedelta(days=7), datetime.min.time(), clinic.zone).astimezone(UTC))
    free = clinic.starts(range(2, 9))
    per_stage = 2 * samples
    if len(free) < per_stage * len(ctx.mode.growth_sizes):
        raise RuntimeError("not enough free slots for the hold samples")
    mine = free[stage * per_stage:(stage + 1) * per_stage]
    sql_slots, http_slots = mine[:samples], mine[samples:]

    explain, plans = _explain(db, clinic, sql_slots[0], span)
    name = f"explain-{size}.txt"
    (ctx.out / name).write_text(explain)
    figures: dict[str, object] = {"rows": size, "explain_file": name, "plan": _plan_evidence(plans)}

    async with await psycopg.AsyncConnection.connect(db.app) as conn:
        busy: list[float] = []
        for i in range(samples + 5):
            t0 = time.perf_counter()
            async with conn.transaction():
                await conn.execute("select set_config('role', 'dentbook_anon', true),"
                                   " set_config('app.tenant_id', %s, true)", (str(clinic.id),))
                await (await conn.execute("select * from dentbook.public_busy(%s, %s, %s)",
                                          (doctor, *span))).fetchall()
            if i >= 5:  # the first few warm the connection's plan cache
                busy.append(time.perf_counter() - t0)
        holds: list[float] = []
        for i, start in enumerate(sql_slots):
            t0 = time.perf_counter()
            outcome = await sql_hold(conn, clinic.id, hold_params(
                clinic, clinic.doctors[1], start, f"growth-sql-{size}-{i}@example.com"))
            if outcome != "held":
                raise RuntimeError(f"SQL hold at {start}: {outcome}")
            holds.append(time.perf_counter() - t0)
    figures["sql_busy"] = summary_ms(busy)
    figures["sql_hold"] = summary_ms(holds)

    with db.server_app(ctx.logs, ctx.secret) as server:
        grid = (f"/{clinic.slug}/slots?doctor={doctor}&visit={clinic.visit}&week={week.isoformat()}")
        conn_http = await httpraw.Connection.open(server.port)
        try:
            renders: list[float] = []
            for i in range(samples + 10):
                t0 = time.perf_counter()
                resp = await conn_http.request(httpraw.get(grid, extra="HX-Request: true\r\n"))
                if resp.status != 200:
                    raise RuntimeError(f"grid: HTTP {resp.status}")
                if i >= 10:
                    renders.append(time.perf_counter() - t0)
        finally:
            conn_http.close()
        cookie, token = await httpraw.browser_session(server.port,
                                                      clinic.page(doctor, start=iso(http_slots[0])))
        http_holds: list[float] = []
        conn_http = await httpraw.Connection.open(server.port)
        try:
            for i, start in enumerate(http_slots):
                raw = httpraw.post_form(f"/{clinic.slug}/bookings", {
                    "doctor_id": str(doctor), "visit_type_id": str(clinic.visit), "start": iso(start),
                    "name": "Growth Patient", "email": f"growth-http-{size}-{i}@example.com",
                    "phone": "", "_csrf_token": token}, cookie)
                t0 = time.perf_counter()
                resp = await conn_http.request(raw)
                if resp.status != 303:
                    raise RuntimeError(f"HTTP hold at {iso(start)}: {resp.status}")
                http_holds.append(time.perf_counter() - t0)
        finally:
            conn_http.close()
    figures["http_grid"] = summary_ms(renders)
    figures["http_hold"] = summary_ms(http_holds)
    _release_bench_holds(db, clinic)
    return figures


def _release_bench_holds(db: Db, clinic: Clinic) -> None:
    """Release this stage's holds (all from 127.0.0.1, all still active): otherwise every
    stage would start with more active holds of one address than the one before, and the
    hold's per-address count would grow with the number of stages, not with history."""
    with admin.as_owner(db.owner, clinic.id) as conn:
        conn.execute("update dentbook.bookings set status = 'released' where status = 'pending'"
                     " and client_ip = '127.0.0.1'")


async def run(ctx: Context) -> list[Row]:
    mode = ctx.mode
    db = Db.create(ctx.db.server, "growth")
    try:
        clinic = _setup(db, mode.growth_clinics)
        past_slots = _past_slots(max(mode.growth_sizes))
        before = 0
        stages: list[dict[str, object]] = []
        for stage, size in enumerate(mode.growth_sizes):
            grow_s, total = _grow(db, mode.growth_clinics, before, size, past_slots)
            before = size
            figures = await _measure(ctx, db, clinic, size, stage)
            figures["generate_seconds"] = round(grow_s, 1)
            figures["rows_in_database"] = total
            figures["measured_doctor_rows"] = _measured_rows(size)
            figures["history_years"] = round(past_slots / SLOTS_PER_DAY / 365, 1)
            print(f"    growth {size}: {figures}", flush=True)
            stages.append(figures)
    finally:
        db.drop()
    return _rows(stages)


def _rows(stages: list[dict[str, object]]) -> list[Row]:
    sizes = " → ".join(f"{st['rows']:,}" for st in stages)
    first, last = stages[0], stages[-1]
    rows: list[Row] = []
    labels = {"http_grid": "grid fragment over HTTP", "sql_busy": "public_busy over SQL",
              "http_hold": "hold over HTTP (local Stripe)", "sql_hold": "hold_slot over SQL"}
    for key, label in labels.items():
        figs = [st[key] for st in stages]
        assert all(isinstance(f, dict) for f in figs)
        p50 = " / ".join(ms(f["p50_ms"]) for f in figs)  # type: ignore[index]
        p99 = " / ".join(ms(f["p99_ms"]) for f in figs)  # type: ignore[index]
        base, cur = first[key], last[key]
        assert isinstance(base, dict) and isinstance(cur, dict)
        r = ratio(cur["p50_ms"], base["p50_ms"])
        rows.append(Row(
            "growth", f"{label}, {sizes} bookings: p50 (p99) ms",
            f"{p50} ({p99})", f"{ms(base['p50_ms'])} at {first['rows']:,}", r,
            "p50 largest / smallest", f"flat (≤ {FLAT}×)", r is not None and r <= FLAT,
            {"per_size": figs}))
    plans: list[dict[str, Any]] = []
    for st in stages:
        assert isinstance(st["plan"], dict)
        plans.append(st["plan"])
    indexes = sorted({str(p["index"]) for p in plans})
    series = {f"{what} {plan.removeprefix('force_').removesuffix('_plan')}":
              [int(p[what][plan]) for p in plans]
              for what in ("busy_buffers", "hold_buffers") for plan in PLANS}
    flat_buffers = all(s[-1] <= max(FLAT * s[0], s[0] + BUFFER_SLACK) for s in series.values())

    def each(values: list[int]) -> str:
        return " / ".join(str(v) for v in values)

    measured = " → ".join(f"{st['measured_doctor_rows']:,}" for st in stages)
    rows.append(Row(
        "growth", f"query plans, {sizes} bookings, measured doctor {measured} "
                  "(bench/results/explain-*.txt)",
        f"{', '.join(indexes)}; execution buffers (hit + read) of the availability read "
        f"{each(series['busy_buffers custom'])} (generic plan {each(series['busy_buffers generic'])}), "
        f"of hold_slot's 3 lookups {each(series['hold_buffers custom'])} "
        f"(generic {each(series['hold_buffers generic'])}); execution "
        + " / ".join(f"{p['execution_ms']:.2f}" for p in plans) + " ms"
        + "; rows fetched then filtered out " + each([int(p["rows_filtered_out"]) for p in plans]),
        "", None, "",
        f"index scans at every size; filtered-out rows and execution buffers flat "
        f"(≤ {FLAT}× or + {BUFFER_SLACK})",
        not any(p["seq_scan"] for p in plans) and flat_buffers
        and int(plans[-1]["rows_filtered_out"]) <= max(50, FLAT * int(plans[0]["rows_filtered_out"])),
        {"plans": plans, "generate_seconds": [st["generate_seconds"] for st in stages],
         "rows_in_database": [st["rows_in_database"] for st in stages],
         "measured_doctor_rows": [st["measured_doctor_rows"] for st in stages],
         "history_years": stages[-1]["history_years"]}))
    return rows
