"""Test helpers for the staff side: accounts, signing in over HTTP, bookings made as the
owner, and reading or shifting the session and failure rows."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from uuid import UUID

import httpx

from dentbook import admin
from dentbook.staff import COOKIE
from helpers import owner_sql

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
ROW = re.compile(r'data-booking="([^"]+)" data-status="([^"]+)"')


def add_staff(pg, clinic, email: str | None = None, password: str = PASSWORD,
              role: str | None = None) -> str:
    """A staff account at `clinic` (an admin unless `role` says otherwise)."""
    email = email or f"staff-{uuid.uuid4().hex[:8]}@example.test"
    admin.add_staff(pg.owner, clinic.slug, email, password, role)
    return email


def login_token(client: httpx.Client, slug: str) -> str:
    """The CSRF token from the sign-in form (or the dashboard's sign-out form when the
    login page sends a signed-in client there)."""
    page = client.get(f"/{slug}/staff/login", follow_redirects=True)
    assert page.status_code == 200, page.text[:300]
    m = CSRF.search(page.text)
    assert m, "sign-in form has no CSRF token"
    return m.group(1)


def sign_in(client: httpx.Client, slug: str, email: str, password: str = PASSWORD,
            **params: str) -> httpx.Response:
    token = login_token(client, slug)
    return client.post(f"/{slug}/staff/login", params=params,
                       data={"email": email, "password": password, "_csrf_token": token})


def signed_in(client: httpx.Client, slug: str, email: str) -> str:
    """Sign in and return the session cookie's value."""
    r = sign_in(client, slug, email)
    assert r.status_code == 303 and r.headers["location"] == f"/{slug}/staff", r.text[-400:]
    return str(client.cookies.get(COOKIE, path=f"/{slug}/staff"))


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def sessions(pg, clinic) -> list[bytes]:
    return [bytes(r[0]) for r in owner_sql(pg.owner, clinic.id,
                                           "select id_hash from dentbook.staff_sessions")]


def shift_session(pg, clinic, token: str, column: str, by: str) -> None:
    """Move a session's timestamp into the past instead of sleeping."""
    assert column in ("last_seen_at", "expires_at", "created_at")
    owner_sql(pg.owner, clinic.id,
              f"update dentbook.staff_sessions set {column} = {column} - %s::interval"
              " where id_hash = %s returning 1", (by, digest(token)))


def shift_failures(pg, clinic, by: str) -> None:
    owner_sql(pg.owner, clinic.id,
              "update dentbook.login_failures set at = at - %s::interval returning 1", (by,))


def insert_booking(pg, clinic, starts: str, name: str, *, status: str = "confirmed",
                   minutes: int = 30, doctor: int = 0, hold: str = "1 hour",
                   paid_after_expiry: bool = False, phone: str | None = "+48 600 100 200",
                   email: str = "pat@example.com") -> UUID:
    """A booking written as the owner; `starts` is an interval from now, e.g. '3 days'."""
    rows = owner_sql(
        pg.owner, clinic.id,
        "insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during, status,"
        " hold_expires_at, patient_name, patient_email, patient_phone, amount_minor, currency,"
        " stripe_refund_id, paid_after_expiry)"
        " values (%s, %s, %s, tstzrange(date_trunc('minute', now() + %s::interval),"
        " date_trunc('minute', now() + %s::interval) + make_interval(mins => %s)), %s,"
        " now() + %s::interval, %s, %s, %s, 5000, 'pln', %s, %s) returning id",
        (clinic.id, clinic.doctors[doctor], clinic.visits["short"], starts, starts, minutes,
         status, hold, name, email, phone, "re_test" if status == "refunded" else None,
         paid_after_expiry))
    return rows[0][0]


def starts_of(pg, clinic, booking: UUID) -> datetime:
    return owner_sql(pg.owner, clinic.id, "select lower(during) from dentbook.bookings"
                     " where id = %s", (booking,))[0][0]
