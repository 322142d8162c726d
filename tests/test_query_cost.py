"""Reads that must not grow with a clinic's history (sql/schema-2.sql).

Under row level security only leakproof conditions can be index conditions. A doctor with
years of past bookings must cost an availability read, a hold or the staff list only the
rows near the asked time: counted here as rows PostgreSQL read from `bookings` in the
transaction (pg_stat_xact_user_tables), never as time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from dentbook.agenda import Filters, appointments
from dentbook.db import Level
from helpers import next_weekday, owner_sql, run_async

HISTORY = 3000  # past bookings of the doctor, plus as many lapsed holds of one patient

_HISTORY = """
insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during, status,
                               hold_expires_at, patient_name, patient_email, client_ip,
                               amount_minor, currency)
select %(t)s, %(d)s, %(v)s, tstzrange(at, at + interval '30 minutes'),
       case when g %% 2 = 0 then 'confirmed' else 'pending' end, at - interval '1 day',
       'Past Patient', 'regular@example.com', '10.9.9.9', 5000, 'pln'
from generate_series(1, %(n)s) g, lateral (select now() - g * interval '2 hours' as at) x
"""
_READ = """
select coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)
from pg_stat_xact_user_tables where schemaname = 'dentbook' and relname = 'bookings'
"""


@pytest.fixture
def busy_doctor(pg, make_clinic):
    clinic = make_clinic()
    owner_sql(pg.owner, clinic.id, _HISTORY,
              {"t": clinic.id, "d": clinic.doctors[0], "v": clinic.visits["short"], "n": HISTORY})
    with psycopg.connect(pg.owner, autocommit=True) as conn:
        conn.execute("analyze dentbook.bookings")
    return clinic


def _rows_read(pg, clinic, level: Level, statement: str, params: dict | tuple) -> int:
    with psycopg.connect(pg.app) as conn, conn.transaction():
        conn.execute("select set_config('role', %s, true), set_config('app.tenant_id', %s, true)",
                     (level.value, str(clinic.id)))
        before = conn.execute(_READ).fetchone()[0]
        conn.execute(statement, params)
        return int(conn.execute(_READ).fetchone()[0]) - int(before)


def test_availability_reads_only_the_week(pg, busy_doctor):
    monday = next_weekday(7, 1)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    read = _rows_read(pg, busy_doctor, Level.ANON,
                      "select * from dentbook.public_busy(%s, %s, %s)",
                      (busy_doctor.doctors[0], start, start + timedelta(days=7)))
    assert read < 50, f"{read} booking rows read for one week of a doctor with {HISTORY} past"


def test_a_hold_reads_only_its_neighbourhood(pg, busy_doctor):
    day = next_weekday(3, 3)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    read = _rows_read(pg, busy_doctor, Level.SERVICE, """
        select * from dentbook.hold_slot(%s, %s, %s, 'New Patient', 'regular@example.com', '',
                                         '10.9.9.9', 'pl', sha256('browser'),
                                         interval '30 minutes', interval '0',
                                         interval '90 days', 3, 20)""",
                      (busy_doctor.doctors[0], busy_doctor.visits["short"], start))
    assert read < 50, f"{read} booking rows read by one hold (e-mail and client with {HISTORY} lapsed holds)"


def test_staff_list_reads_only_upcoming(pg, busy_doctor):
    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(pg.app) as conn, conn.transaction():
            await conn.execute("select set_config('role', %s, true), set_config('app.tenant_id', %s, true)",
                               (Level.STAFF.value, str(busy_doctor.id)))
            before = (await (await conn.execute(_READ)).fetchone())[0]
            await appointments(conn, ZoneInfo("Europe/Warsaw"), Filters())
            return int((await (await conn.execute(_READ)).fetchone())[0]) - int(before)

    read = run_async(run())
    assert read < 50, f"{read} booking rows read to list upcoming visits of a clinic with {HISTORY} past"
