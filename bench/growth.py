"""Cost growth: availability render time and hold latency as bookings grow 10x and 100x
(full: 10 k -> 100 k -> 1 M rows across 1,000 clinics of 2 doctors).

Rows are generated with `generate_series` as the owner role, one clinic at a time with
`app.tenant_id` set (so row level security, constraints and the audit and NOTIFY triggers
all apply), then VACUUM ANALYZE. Per doctor: 4/5 of the rows in the past (confirmed,
expired, released), 1/5 from week 9 on (confirmed, some pending holds). The measured clinic
(`growth-0`) also has a realistic next week (60 % taken); its weeks 1-8 get no generated
rows, so each size measures the same week and the same kind of free slot.

At each size, on a freshly started `dentbook serve --workers 2`: the grid fragment over HTTP
and `public_busy` over SQL (the availability read), a hold over HTTP (with the local Stripe)
and `hold_slot` over SQL, sequentially; and EXPLAIN (ANALYZE, BUFFERS) of the availability
query and of the hold's statements, saved to bench/results/explain-<rows>.txt.
Baseline: the smallest size of the same run.
"""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime, timedelta

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

DOCTORS_PER_CLINIC = 2
CHUNK = 50  # clinics per transaction while generating rows
FLAT = 1.5  # "no cost growth": at most this times the smallest size's p50

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

# Booking j of a doctor: j % 5 = 4 -> future slot f = j / 5 (from week 9 on), else past slot p.
# Slot numbers are spread by multiplying with a number prime to the slot count, so they stay
# distinct per doctor (20 half-hour slots a day from 08:00, Warsaw time).
GROW = """
do $$
declare t uuid;
begin
  for t in select id from dentbook.tenants where slug ~ '^growth-[0-9]+$'
           order by slug offset {offset} limit {limit} loop
    perform set_config('app.tenant_id', t::text, true);
    insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during, status,
        hold_expires_at, patient_name, patient_email, client_ip, amount_minor, currency)
    select d.tenant_id, d.id, v.id, tstzrange(s.at, s.at + interval '30 minutes', '[)'),
        s.status, case when s.status = 'pending' then now() + interval '25 minutes'
                       else s.at - interval '1 day' end,
        'Patient ' || j, 'patient' || j || '.' || left(d.id::text, 8) || '@example.com',
        ('10.1.' || (j % 200) || '.' || (j % 250))::inet, 5000, 'pln'
    from dentbook.doctors d
    cross join lateral (select id from dentbook.visit_types x where x.tenant_id = d.tenant_id
                        order by x.created_at, x.id limit 1) v
    cross join generate_series({lo}, {hi} - 1) j
    cross join lateral (
        select case when j % 5 = 4
                 then ((current_date + 63 + ((j / 5) * 787 % 3220) / 20)::timestamp
                       + interval '8 hours' + ((j / 5) * 787 % 3220 % 20) * interval '30 minutes')
                      at time zone 'Europe/Warsaw'
                 else ((current_date - 3 - ((j - j / 5) * 7919 % 14600) / 20)::timestamp
                       + interval '8 hours' + ((j - j / 5) * 7919 % 14600 % 20) * interval '30 minutes')
                      at time zone 'Europe/Warsaw' end as at,
               case when j % 5 = 4 then (case when j % 10 = 9 then 'pending' else 'confirmed' end)
                    when j % 10 < 7 then 'confirmed' when j % 10 < 9 then 'expired'
                    else 'released' end as status) s
    where d.active;
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


def _grow(db: Db, clinics: int, lo: int, hi: int) -> float:
    """Rows lo..hi-1 for every doctor of every clinic; seconds taken (VACUUM ANALYZE included)."""
    t0 = time.monotonic()
    with psycopg.connect(db.owner, autocommit=True) as conn:
        conn.execute("set role dentbook_owner")
        for offset in range(0, clinics, CHUNK):
            conn.execute(GROW.format(offset=offset, limit=CHUNK, lo=int(lo), hi=int(hi)).encode())
        conn.execute("reset role")
        conn.execute("vacuum analyze dentbook.bookings")
        conn.execute("vacuum analyze dentbook.booking_events")
    return time.monotonic() - t0


def _explain(db: Db, clinic: Clinic, start: datetime, span: tuple[datetime, datetime]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) as the functions run them: owner role, the clinic set."""
    doctor = clinic.doctors[0]
    out: list[str] = []
    with psycopg.connect(db.owner) as conn:
        conn.execute("set role dentbook_owner")
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(clinic.id),))
        count = conn.execute("select count(*) from dentbook.bookings").fetchone()
        out.append(f"-- bookings visible to the measured clinic: {count[0] if count else '?'}")
        for label, sql, args in (
                ("public_busy body (availability of one doctor-week)", BUSY_BODY, (doctor, *span)),
                ("hold_slot: just-in-time expiry of lapsed holds on the interval", EXPIRE_STEP,
                 (doctor, start)),
                ("hold_slot: active holds per e-mail", EMAIL_STEP, ("patient1@example.com",)),
                ("hold_slot: active holds per client address", IP_STEP, ("127.0.0.1",))):
            types = {BUSY_BODY: "uuid, timestamptz, timestamptz", EXPIRE_STEP: "uuid, timestamptz",
                     EMAIL_STEP: "text", IP_STEP: "inet"}[sql]
            placeholders = ", ".join(["%s"] * len(args))
            for plan in ("force_custom_plan", "force_generic_plan"):
                with conn.transaction(force_rollback=True):
                    conn.execute(f"set local plan_cache_mode = {plan}")
                    conn.execute(f"prepare q ({types}) as {sql}")
                    rows = psycopg.ClientCursor(conn).execute(
                        f"explain (analyze, buffers, costs off) execute q ({placeholders})", args).fetchall()
                    conn.execute("deallocate q")
                out.append(f"\n-- {label} [{plan}]\n" + "\n".join(str(r[0]) for r in rows))
    return "\n".join(out) + "\n"


def _index_evidence(text: str) -> dict[str, object]:
    """From the availability plan (custom): the index used, rows it fetched that the
    conditions then threw away (history read for nothing), buffers touched, execution time."""
    busy = text.split("\n-- ")[1]
    m_index = re.search(r"(?:Index|Index Only|Bitmap Index) Scan (?:using|on) (\w+)", busy)
    buffers = [int(x) for x in re.findall(r"shared hit=(\d+)", busy)]
    m_time = re.search(r"Execution Time: ([\d.]+) ms", busy)
    removed = [int(x) for x in re.findall(r"Rows Removed by Filter: (\d+)", busy)]
    return {"index": m_index.group(1) if m_index else "NONE (seq scan?)",
            "rows_filtered_out": max(removed, default=0),
            "seq_scan": "Seq Scan" in busy, "shared_hit_max": max(buffers) if buffers else 0,
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

    explain = _explain(db, clinic, sql_slots[0], span)
    name = f"explain-{size}.txt"
    (ctx.out / name).write_text(explain)
    figures: dict[str, object] = {"rows": size, "explain_file": name, "plan": _index_evidence(explain)}

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
    return figures


async def run(ctx: Context) -> list[Row]:
    mode = ctx.mode
    db = Db.create(ctx.db.server, "growth")
    try:
        clinic = _setup(db, mode.growth_clinics)
        per_doctor_done = 0
        stages: list[dict[str, object]] = []
        n_doctors = mode.growth_clinics * DOCTORS_PER_CLINIC
        for stage, size in enumerate(mode.growth_sizes):
            per_doctor = size // n_doctors
            grow_s = _grow(db, mode.growth_clinics, per_doctor_done, per_doctor)
            per_doctor_done = per_doctor
            figures = await _measure(ctx, db, clinic, size, stage)
            figures["generate_seconds"] = round(grow_s, 1)
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
    plans = [st["plan"] for st in stages]
    assert all(isinstance(p, dict) for p in plans)
    indexes = sorted({str(p["index"]) for p in plans})  # type: ignore[index]
    rows.append(Row(
        "growth", f"availability query plan, {sizes} bookings (bench/results/explain-*.txt)",
        f"{', '.join(indexes)}; shared buffers "
        + " / ".join(str(p["shared_hit_max"]) for p in plans)  # type: ignore[index]
        + "; execution " + " / ".join(f"{p['execution_ms']:.2f}" for p in plans) + " ms"  # type: ignore[index]
        + "; rows fetched then filtered out "
        + " / ".join(str(p["rows_filtered_out"]) for p in plans),  # type: ignore[index]
        "", None, "", "index range scan at every size (filtered-out rows do not grow)",
        not any(p["seq_scan"] for p in plans)  # type: ignore[index]
        and int(plans[-1]["rows_filtered_out"]) <= max(50, FLAT * int(plans[0]["rows_filtered_out"])),  # type: ignore[index]
        {"plans": plans, "generate_seconds": [st["generate_seconds"] for st in stages]}))
    return rows
