"""Test helpers for the admin's settings: staff of a given role signed in over HTTP, the
CSRF token of the page they are on, a visit written at a given time (for the lists of visits
left outside new hours), and a snapshot of everything settings may change."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import psycopg

from dentbook.db import Level
from helpers import owner_sql
from staff_helpers import CSRF, add_staff, signed_in

WARSAW = ZoneInfo("Europe/Warsaw")

# Everything a settings form may change, per clinic (the audit log included: a refused
# write must not be logged as done).
SNAPSHOT = {
    "tenants": "select name, address, phone, email, time_zone, default_locale,"
               " cancel_window_hours, late_refund_percent, reminder_hours, retention_years,"
               " unpaid_erasure_days from dentbook.tenants"
               " where id = dentbook.current_tenant()",
    "staff": "select id, email, role, active, password_hash, invite_hash, invite_expires_at"
             " from dentbook.staff_accounts order by id",
    "sessions": "select id_hash from dentbook.staff_sessions order by id_hash",
    "doctors": "select id, name, active, feed_hash from dentbook.doctors order by id",
    "hours": "select doctor_id, weekday, start_time, end_time from dentbook.working_hours"
             " order by 1, 2, 3",
    "days_off": "select doctor_id, day from dentbook.days_off order by 1, 2",
    "visit_types": "select id, name_pl, name_en, duration_minutes, deposit_minor, active"
                   " from dentbook.visit_types order by id",
    "bookings": "select id, during, amount_minor, status from dentbook.bookings order by id",
    "audit": "select count(*) from dentbook.audit_log",
}


@dataclass
class Staff:
    client: httpx.Client
    email: str
    id: UUID
    slug: str

    def token(self) -> str:
        """The CSRF token of the staff dashboard's form, as a browser would have it."""
        page = self.client.get(f"/{self.slug}/staff")
        assert page.status_code == 200, page.text[:300]
        m = CSRF.search(page.text)
        assert m, "the dashboard has no form"
        return m.group(1)

    def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(f"/{self.slug}/staff/settings{path}",
                                data={**(data or {}), "_csrf_token": self.token()})

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.client.get(f"/{self.slug}/staff/settings{path}", params=params)


def staff_id(pg, clinic, email: str) -> UUID:
    return owner_sql(pg.owner, clinic.id, "select id from dentbook.staff_accounts where email = %s",
                     (email,))[0][0]


def set_role(pg, clinic, email: str, role: str) -> None:
    owner_sql(pg.owner, clinic.id, "update dentbook.staff_accounts set role = %s where email = %s"
              " returning 1", (role, email))


def new_staff(pg, clinic, role: str = "admin", email: str | None = None) -> tuple[str, UUID]:
    email = add_staff(pg, clinic, email=email)
    set_role(pg, clinic, email, role)
    return email, staff_id(pg, clinic, email)


@contextmanager
def staff_session(server, pg, clinic, role: str = "admin") -> Iterator[Staff]:
    """A browser signed in at `clinic` as a new account of `role`."""
    email, account = new_staff(pg, clinic, role)
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as client:
        signed_in(client, clinic.slug, email)
        yield Staff(client, email, account, clinic.slug)


def add_visit(pg, clinic, day: date, at: time, minutes: int = 30, status: str = "confirmed",
              name: str = "Anna Nowak") -> UUID:
    """A visit with the clinic's first doctor at `at` on `day` in Warsaw, written as the owner."""
    start = datetime.combine(day, at, tzinfo=WARSAW)
    return owner_sql(
        pg.owner, clinic.id,
        "insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during, status,"
        " hold_expires_at, patient_name, patient_email, amount_minor, currency)"
        " values (%s, %s, %s, tstzrange(%s, %s), %s, now() + interval '1 hour', %s,"
        " 'anna@example.test', 5000, 'pln') returning id",
        (clinic.id, clinic.doctors[0], clinic.visits["short"], start,
         start + timedelta(minutes=minutes), status, name))[0][0]


def snapshot(pg, clinic) -> dict[str, list[tuple]]:
    return {name: owner_sql(pg.owner, clinic.id, query) for name, query in SNAPSHOT.items()}


def field_errors(html: str) -> set[str]:
    return set(re.findall(r'data-field-error="([^"]+)"', html))


@contextmanager
def as_staff(pg, clinic, account: UUID | None) -> Iterator[psycopg.Connection[tuple]]:
    """A transaction at the staff level with `account` signed in, as the server opens one."""
    with psycopg.connect(pg.app) as conn, conn.transaction():
        conn.execute("select set_config('role', %s, true), set_config('app.tenant_id', %s, true),"
                     " set_config('app.staff_id', %s, true), set_config('app.actor', 'staff', true)",
                     (Level.STAFF.value, str(clinic.id), str(account) if account else ""))
        yield conn
