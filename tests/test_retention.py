"""Retention by the in-process job runner: one 'retention' job per clinic, claimed exactly
once across runners, re-scheduling itself; unpaid holds lose their personal data some days
after they lapsed, visits are anonymised some years after they took place (paid deposits
keep their accounting columns), and each run leaves an audit row with counts. Time is moved
by rewriting the rows' times into the past, never by sleeping."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from dentbook import jobs, retention
from dentbook.db import Database
from dentbook.settings import load_settings
from helpers import Server, app_settings, new_clinic, owner_sql, run_async, wait_for

SETTINGS = load_settings({})


def _booking(pg, clinic, *, visit_ago, hold_ago, status, paid=False):
    """A booking of Jan whose visit was `visit_ago` before now and whose hold lapsed
    `hold_ago` before now (intervals; negative: in the future)."""
    return owner_sql(
        pg.owner, clinic.id,
        "insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during, status,"
        " hold_expires_at, patient_name, patient_email, patient_phone, client_ip, note,"
        " amount_minor, currency, stripe_session_id, stripe_payment_intent_id, stripe_refund_id,"
        " reference)"
        " values (%s, %s, %s, tstzrange(now() - %s::interval, now() - %s::interval + interval '30 min'),"
        " %s, now() - %s::interval, 'Jan Retencja', 'jan.retencja@example.com', '600 700 800',"
        " '198.51.100.7', 'Jan: tooth 36', 5000, 'pln', %s, %s, %s, dentbook.new_reference())"
        " returning id",
        (clinic.id, clinic.doctors[0], clinic.visits["short"], visit_ago, visit_ago, status,
         hold_ago, f"cs_{uuid.uuid4().hex}", f"pi_{uuid.uuid4().hex}" if paid else None,
         f"re_{uuid.uuid4().hex}" if status == "refunded" else None))[0][0]


def _named(pg, clinic, booking):
    return owner_sql(pg.owner, clinic.id,
                     "select patient_name is not null, anonymised_at is not null, amount_minor,"
                     " stripe_payment_intent_id is not null from dentbook.bookings where id = %s",
                     (booking,))[0]


def _due_now(pg, clinic):
    owner_sql(pg.owner, clinic.id, "update dentbook.jobs set due_at = now() - interval '1 minute'"
              " where kind = 'retention' and state = 'due' returning 1")


async def _runners(url, count=1, prepare_only=False):
    """`count` job runners (as many processes would have), each claiming what is due at once."""
    dbs = [Database(url, min_size=1, max_size=2) for _ in range(count)]
    for db in dbs:
        await db.open()
    try:
        runners = [jobs.Runner(db, {retention.KIND: partial(retention.run_job, db, SETTINGS)},
                               prepare=(retention.ENSURE,)) for db in dbs]
        if prepare_only:
            await asyncio.gather(*(r.run_prepare() for r in runners))
            return 0
        return sum(await asyncio.gather(*(r.run_due() for r in runners)))
    finally:
        for db in dbs:
            await db.close()


def _retention_jobs(pg, clinic):
    return owner_sql(pg.owner, clinic.id, "select state, due_at from dentbook.jobs"
                     " where kind = 'retention' order by id")


def _runs(pg, clinic):
    return [r[0] for r in owner_sql(pg.owner, clinic.id, "select after from dentbook.audit_log"
                                    " where action = 'retention' order by id")]


def test_a_new_clinic_has_its_retention_job_at_three_at_night(private_pg):
    clinic = new_clinic(private_pg)
    [(state, due)] = _retention_jobs(private_pg, clinic)
    local = due.astimezone(ZoneInfo("Europe/Warsaw"))
    assert state == "due" and (local.hour, local.minute) == (3, 0)
    assert timedelta(0) < due - datetime.now(due.tzinfo) <= timedelta(hours=25)


def test_retention_on_a_clock_set_forward(private_pg):
    pg = private_pg
    clinic = new_clinic(pg)
    lapsed = _booking(pg, clinic, visit_ago="-2 days", hold_ago="8 days", status="expired")
    recent = _booking(pg, clinic, visit_ago="-2 days", hold_ago="6 days", status="expired")
    released = _booking(pg, clinic, visit_ago="-3 days", hold_ago="10 days", status="released")
    never_touched = _booking(pg, clinic, visit_ago="-4 days", hold_ago="10 days", status="pending")
    paid_late = _booking(pg, clinic, visit_ago="-5 days", hold_ago="10 days", status="refunded",
                         paid=True)
    old = _booking(pg, clinic, visit_ago="3 years 1 day", hold_ago="3 years 2 days",
                   status="confirmed", paid=True)
    younger = _booking(pg, clinic, visit_ago="2 years 2 days", hold_ago="2 years 3 days",
                       status="confirmed", paid=True)
    owner_sql(pg.owner, clinic.id,
              "insert into dentbook.messages (tenant_id, booking_id, kind, to_address, locale)"
              " values (%s, %s, 'confirmation', 'jan.retencja@example.com', 'pl') returning 1",
              (clinic.id, old))
    owner_sql(pg.owner, clinic.id,
              "insert into dentbook.visit_links (tenant_id, token_hash, booking_id, expires_at)"
              " values (%s, sha256('old'), %s, now() + interval '1 day') returning 1",
              (clinic.id, old))

    # Failed sign-ins: one the throttling window still needs, one it no longer does.
    for email, ago in (("old@example.com", "16 minutes"), ("recent@example.com", "1 minute")):
        owner_sql(pg.owner, clinic.id, "insert into dentbook.login_failures (tenant_id, email,"
                  " client_ip, at) values (%s, %s, '192.0.2.1', now() - %s::interval) returning 1",
                  (clinic.id, email, ago))

    assert run_async(_runners(pg.app)) == 0  # not due yet: nothing runs
    _due_now(pg, clinic)
    assert run_async(_runners(pg.app)) == 1

    assert _runs(pg, clinic) == [{"holds_erased": 3, "visits_anonymised": 1,
                                  "login_failures_deleted": 1, "unpaid_erasure_days": 7,
                                  "retention_years": 3}]
    assert owner_sql(pg.owner, clinic.id, "select email from dentbook.login_failures") == [
        ("recent@example.com",)]
    for booking in (lapsed, released, never_touched):
        assert _named(pg, clinic, booking) == (False, True, 5000, False)
    for booking in (recent, younger):
        assert _named(pg, clinic, booking)[:2] == (True, False)
    assert _named(pg, clinic, paid_late)[:2] == (True, False)  # money moved: kept with the visits
    # The old visit names nobody, but keeps what accounting requires of its paid deposit.
    assert _named(pg, clinic, old) == (False, True, 5000, True)
    assert owner_sql(pg.owner, clinic.id,
                     "select patient_email, patient_phone, client_ip, note, reference, email_key,"
                     " phone_key, holder_hash from dentbook.bookings where id = %s", (old,)) == [
        (None,) * 8]
    assert owner_sql(pg.owner, clinic.id, "select to_address from dentbook.messages"
                     " where booking_id = %s", (old,)) == [(None,)]
    assert owner_sql(pg.owner, clinic.id, "select revoked_at is not null from dentbook.visit_links"
                     " where booking_id = %s", (old,)) == [(True,)]
    # The run re-scheduled itself, once: done, and the next one due tomorrow night.
    states = _retention_jobs(pg, clinic)
    assert [s for s, _ in states] == ["done", "due"]
    assert states[1][1] - datetime.now(states[1][1].tzinfo) > timedelta(hours=1)

    # A year later (every time moved a year into the past): the younger visit's turn.
    owner_sql(pg.owner, clinic.id,
              "update dentbook.bookings set during = tstzrange(lower(during) - interval '1 year',"
              " upper(during) - interval '1 year'), hold_expires_at = hold_expires_at"
              " - interval '1 year' where id = any(%s) returning 1",
              ([recent, younger, paid_late],))
    _due_now(pg, clinic)
    assert run_async(_runners(pg.app)) == 1
    assert _runs(pg, clinic)[-1] == {"holds_erased": 1, "visits_anonymised": 1,
                                     "login_failures_deleted": 0, "unpaid_erasure_days": 7,
                                     "retention_years": 3}
    assert _named(pg, clinic, recent) == (False, True, 5000, False)
    assert _named(pg, clinic, younger) == (False, True, 5000, True)
    assert _named(pg, clinic, paid_late)[:2] == (True, False)  # its visit was only a year ago
    # No audit row of a run names anyone.
    assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.audit_log"
                     " where after::text like '%%Jan%%' or detail like '%%Jan%%'") == [(0,)]


def test_the_clinics_settings_decide(private_pg):
    pg = private_pg
    clinic = new_clinic(pg)
    owner_sql(pg.owner, clinic.id, "update dentbook.tenants set retention_years = 1,"
              " unpaid_erasure_days = 2 where id = %s returning 1", (clinic.id,))
    hold = _booking(pg, clinic, visit_ago="-1 day", hold_ago="3 days", status="expired")
    visit = _booking(pg, clinic, visit_ago="13 months", hold_ago="13 months", status="confirmed")
    _due_now(pg, clinic)
    assert run_async(_runners(pg.app)) == 1
    assert _named(pg, clinic, hold)[:2] == (False, True)
    assert _named(pg, clinic, visit)[:2] == (False, True)


def test_a_due_run_is_claimed_exactly_once_across_runners(private_pg):
    pg = private_pg
    clinic = new_clinic(pg)
    _booking(pg, clinic, visit_ago="-2 days", hold_ago="9 days", status="expired")
    _due_now(pg, clinic)
    assert run_async(_runners(pg.app, count=4)) == 1
    assert len(_runs(pg, clinic)) == 1
    assert [s for s, _ in _retention_jobs(pg, clinic)] == ["done", "due"]
    # Run again after a crash between the run and marking its job done: the job is claimed
    # again, and the next run is still scheduled once.
    owner_sql(pg.owner, clinic.id,
              "update dentbook.jobs set state = 'due', finished_at = null, due_at = now()"
              " - interval '1 minute' where id = (select min(id) from dentbook.jobs"
              " where kind = 'retention') returning 1")
    assert run_async(_runners(pg.app, count=2)) == 1
    assert [s for s, _ in _retention_jobs(pg, clinic)] == ["done", "due"]


def test_every_clinic_gets_one_job_when_runners_start(private_pg):
    pg = private_pg
    clinics = [new_clinic(pg) for _ in range(3)]
    for c in clinics[:2]:
        owner_sql(pg.owner, c.id, "delete from dentbook.jobs where kind = 'retention' returning 1")
    run_async(_runners(pg.app, count=3, prepare_only=True))
    for c in clinics:
        assert [s for s, _ in _retention_jobs(pg, c)] == ["due"], c.slug


def test_the_apps_runner_runs_retention(private_pg):
    pg = private_pg
    clinic = new_clinic(pg)
    owner_sql(pg.owner, clinic.id, "delete from dentbook.jobs where kind = 'retention' returning 1")
    hold = _booking(pg, clinic, visit_ago="-2 days", hold_ago="8 days", status="expired")
    app = Server(app_settings(pg)).start()
    try:
        # At start the app's runner gave the clinic a job due now, and ran it.
        wait_for(lambda: _runs(pg, clinic), what="a retention run")
    finally:
        app.stop()
    assert _runs(pg, clinic)[0]["holds_erased"] == 1
    assert _named(pg, clinic, hold)[:2] == (False, True)
