"""Through PgBouncer (pool_mode=transaction) with several `dentbook serve` processes on one
database, as separate hosts would run them: one winner of a 200-way race, calendars live
whichever process changed them, a webhook replay storm confirming each booking once, late
payments refunded once each although every process runs the job runner; and why psycopg's
prepared statements must be off in front of PgBouncer 1.18."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
from scale_kit import Serve, app_names, metric, scrape

from dentbook.db import Database
from helpers import (
    SseClient,
    book,
    booking_row,
    csrf_token,
    form,
    free_starts,
    hold_sessions,
    new_clinic,
    next_week,
    owner_sql,
    run_async,
    stripe_signature,
    wait_for,
    webhook_storm,
)

RACERS = 200
COPIES = 8  # deliveries of each event in the storm
LATE = 24  # late payments: more than one runner's batch (20), so both runners claim


async def _race(urls: list[str], cookies: httpx.Cookies, path: str,
                forms: list[dict[str, str]]) -> list[int]:
    limits = httpx.Limits(max_connections=len(forms), max_keepalive_connections=0)
    async with httpx.AsyncClient(cookies=cookies, limits=limits, timeout=300) as c:
        start = asyncio.Event()

        async def one(url: str, data: dict[str, str]) -> int:
            await start.wait()
            return (await c.post(url + path, data=data)).status_code

        tasks = [asyncio.create_task(one(urls[i % len(urls)], d)) for i, d in enumerate(forms)]
        await asyncio.sleep(0.05)
        start.set()
        return list(await asyncio.gather(*tasks))


def test_200_attempts_across_three_processes_make_one_hold(private_pg, bouncer, recording_stripe, tmp_path):
    pg = private_pg
    a = Serve(pg, bouncer, recording_stripe.url, tmp_path, workers=2).start()  # two processes, one socket
    b = Serve(pg, bouncer, recording_stripe.url, tmp_path).start()
    try:
        clinic = new_clinic(pg)
        doctor, visit = clinic.doctors[0], clinic.visits["short"]
        with httpx.Client(base_url=a.url, timeout=60) as client:
            start = free_starts(client, clinic.slug, doctor, visit, next_week(client, clinic.slug))[0]
            token = csrf_token(client, clinic.slug, doctor, visit, start)
            forms = [form(doctor, visit, start, token, email=f"r{i}@example.com") for i in range(RACERS)]
            codes = run_async(_race([a.url, b.url], client.cookies, f"/{clinic.slug}/bookings", forms))
    finally:
        b.stop()
        a.stop()
    assert Counter(codes) == {303: 1, 409: RACERS - 1}, Counter(codes)
    active = owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.bookings where doctor_id = %s"
                       " and status in ('pending', 'confirmed')", (doctor,))
    assert active == [(1,)]
    print(f"race through PgBouncer: {RACERS} attempts on 3 processes (serve --workers 2 + serve), "
          f"1 winner, {RACERS - 1}×409")


def _calendar(url: str, clinic, week: str) -> str:
    return (f"{url}/{clinic.slug}/events?doctor={clinic.doctors[0]}"
            f"&visit={clinic.visits['short']}&week={week}")


def test_a_calendar_on_one_process_shows_holds_made_on_the_other(private_pg, two_servers):
    pg, (a, b) = private_pg, two_servers
    clinic = new_clinic(pg)
    with httpx.Client(base_url=a.url, timeout=60) as on_a, \
            httpx.Client(base_url=b.url, timeout=60) as on_b:
        week = next_week(on_a, clinic.slug)
        first, second = free_starts(on_a, clinic.slug, clinic.doctors[0], clinic.visits["short"],
                                    week)[:2]
        watch_b = SseClient(_calendar(b.url, clinic, week))
        watch_a = SseClient(_calendar(a.url, clinic, week))
        try:
            watch_b.wait_state(first, "free")
            watch_a.wait_state(second, "free")
            r, _ = book(on_a, clinic, start=first, email="on-a@example.com")
            assert r.status_code == 303
            watch_b.wait_state(first, "taken")  # made on A, seen on B
            r, _ = book(on_b, clinic, start=second, email="on-b@example.com")
            assert r.status_code == 303
            watch_a.wait_state(second, "taken")  # made on B, seen on A
        finally:
            watch_a.close()
            watch_b.close()


def test_a_webhook_storm_on_two_processes_confirms_each_booking_once(private_pg, two_servers,
                                                                     recording_stripe):
    pg, (a, b) = private_pg, two_servers
    clinic = new_clinic(pg)
    with httpx.Client(base_url=a.url, timeout=60) as client:
        sessions = hold_sessions(client, clinic, 6, "storm")
    for session in sessions:
        assert recording_stripe.pay(session).status_code == 200
    events = [e["event"] for e in recording_stripe.events() if e["event"]["data"]["object"]["id"] in sessions]
    assert len(events) == len(sessions)
    answers = webhook_storm(events, [a.url, b.url], COPIES, seed=19)
    assert {r.status_code for r in answers} == {200}
    outcomes = Counter(r.json()["outcome"] for r in answers)
    assert outcomes == {"confirmed": len(sessions), "replay": len(answers) - len(sessions)}, outcomes
    for session in sessions:
        row = booking_row(pg.owner, clinic.id, session)
        assert row["status"] == "confirmed"
        mails = owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.messages where booking_id = %s"
                          " and kind = 'confirmation'", (row["id"],))
        assert mails == [(1,)]  # one confirmation e-mail queued, whoever answered
    confirmed = metric(scrape(a.url), "dentbook_confirmations_total") + \
        metric(scrape(b.url), "dentbook_confirmations_total")
    assert confirmed == len(sessions)
    print(f"storm through PgBouncer: {len(answers)} deliveries of {len(events)} events to 2 processes, "
          f"{len(sessions)} confirmations")


def test_late_payments_are_refunded_once_each_with_two_job_runners(private_pg, two_servers, recording_stripe):
    pg, (a, b) = private_pg, two_servers
    clinic = new_clinic(pg, doctors=1)
    doctor = clinic.doctors[0]
    with httpx.Client(base_url=a.url, timeout=60) as client:
        sessions = hold_sessions(client, clinic, LATE, "late")
    # Every hold lapses before its money arrives: each payment is owed back.
    owner_sql(pg.owner, clinic.id, "update dentbook.bookings set hold_expires_at = now()"
              " - interval '1 second' where doctor_id = %s", (doctor,))
    for session in sessions:
        assert recording_stripe.pay(session, force=True).status_code == 200
    events = [e["event"] for e in recording_stripe.events() if e["event"]["data"]["object"]["id"] in sessions]
    assert len(events) == LATE
    with ThreadPoolExecutor(8) as pool, httpx.Client(timeout=120) as http:
        bodies = [(a.url if i % 2 else b.url, json.dumps(e).encode()) for i, e in enumerate(events)]
        answers = list(pool.map(lambda d: http.post(f"{d[0]}/webhooks/stripe", content=d[1],
                                                     headers=stripe_signature(d[1])), bodies))
    assert {r.json()["outcome"] for r in answers} == {"refund"}
    counts = "select count(*) from dentbook.bookings where doctor_id = %s and status = 'refunded'"
    wait_for(lambda: owner_sql(pg.owner, clinic.id, counts, (doctor,)) == [(LATE,)], timeout=120,
             what="every late payment refunded")
    jobs = owner_sql(pg.owner, clinic.id, "select state, attempts from dentbook.jobs where kind = 'refund'")
    assert Counter(jobs) == {("done", 1): LATE}  # each claimed once, by one runner
    for session in sessions:
        row = booking_row(pg.owner, clinic.id, session)
        assert len(recording_stripe.refunds(row["stripe_payment_intent_id"])) == 1
    made = [metric(scrape(s.url), "dentbook_refunds_total") for s in (a, b)]
    assert sum(made) == LATE, made
    print(f"jobs: {LATE} late payments, {LATE} refunds by 2 runners ({made[0]:.0f} + {made[1]:.0f})")


def test_the_request_id_names_the_transaction_through_pgbouncer(pg, bouncer):
    assert app_names(pg, bouncer.url(pg.app)) == [("dentbook req-19abc", "dentbook req-19abc"),
                                           ("dentbook", "dentbook")]


def _repeat(url: str, prepare_threshold: int | None) -> list[str]:
    """Two clients through PgBouncer taking turns on one statement, 12 times each: what failed."""
    errors = []
    with psycopg.connect(url, prepare_threshold=prepare_threshold, autocommit=True) as one, \
            psycopg.connect(url, prepare_threshold=prepare_threshold, autocommit=True) as two:
        for i in range(12):
            for conn in (one, two):
                try:
                    conn.execute("select %s::int + 1", (i,)).fetchone()
                except psycopg.Error as exc:
                    errors.append(type(exc).__name__)
    return errors


def test_prepared_statements_break_behind_pgbouncer_118_so_the_pool_turns_them_off(pg, bouncer):
    through = bouncer.url(pg.app)
    # What psycopg does by default (prepare after 5 runs): the statement is prepared on one
    # server connection and then executed, or prepared again, on another.
    assert _repeat(through, 0), "PgBouncer kept prepared statements: max_prepared_statements?"
    assert _repeat(through, None) == []
    db = Database(through, prepare=False)
    assert db.pool.kwargs["prepare_threshold"] is None
    assert "prepare_threshold" not in Database(pg.app).pool.kwargs


def test_the_schema_uses_no_session_state(pg):
    """What would not survive a transaction pooler: session advisory locks, session-wide
    settings, LISTEN, temporary tables, cursors WITH HOLD, prepared statements in SQL."""
    with psycopg.connect(pg.owner) as conn:
        found = conn.execute(r"""
            select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = 'dentbook' and (
                p.prosrc ~* 'pg_(try_)?advisory_lock(_shared)?\s*\('
                or p.prosrc ~* 'set_config\s*\([^;]*,\s*false\s*\)'
                or p.prosrc ~* '\m(listen|unlisten|prepare|discard)\s'
                -- SET as a statement (after ; or a block keyword), not UPDATE's SET role = …
                or p.prosrc ~* ('(^|;|\mbegin|\mthen|\melse|\mloop)\s*'
                                'set\s+(session\s+)?(role|search_path|app\.)')
                or p.prosrc ~* 'create\s+(temp|temporary)\s'
                or p.prosrc ~* 'with\s+hold')""").fetchall()
        xact_locks = conn.execute(
            "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'dentbook' and p.prosrc ~* 'pg_advisory_xact_lock'").fetchone()
    assert found == []
    assert xact_locks[0] >= 2  # the checks above can see locks: these are the transaction's own
