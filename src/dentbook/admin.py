"""Operator actions: clinics, doctors and their hours, visit types, staff accounts.

They run with the privileged URL, as the owner role, and set the clinic as the
transaction's tenant like everything else, so row level security applies to them too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from dentbook import retention, rules
from dentbook.passwords import hash_password


class AdminError(ValueError):
    """An operator command cannot be carried out; the message says why, in one line."""


@contextmanager
def as_owner(url: str, tenant: uuid.UUID | None = None) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("set local role dentbook_owner")
        if tenant:
            conn.execute("select set_config('app.tenant_id', %s, true)", (str(tenant),))
        yield conn


def clinic_id(conn: psycopg.Connection[tuple[object, ...]], slug: str) -> uuid.UUID:
    row = conn.execute("select id from dentbook.public_clinic(%s)", (slug,)).fetchone()
    if row is None:
        raise AdminError(f"no clinic with slug {slug!r}")
    conn.execute("select set_config('app.tenant_id', %s, true)", (str(row[0]),))
    return row[0]  # type: ignore[return-value]


def add_clinic(url: str, slug: str, name: str, time_zone: str = "Europe/Warsaw",
               locale: str = "pl", currency: str = "pln") -> uuid.UUID:
    if not rules.valid_slug(slug):
        raise AdminError(f"slug {slug!r}: use 1-50 lowercase letters, digits and dashes "
                         f"(not {', '.join(sorted(rules.RESERVED_SLUGS))})")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise AdminError(f"unknown time zone {time_zone!r} (e.g. Europe/Warsaw)") from None
    if locale not in ("pl", "en"):
        raise AdminError("locale must be pl or en")
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise AdminError("currency must be a three-letter ISO code, e.g. pln")
    new = uuid.uuid4()
    with as_owner(url, new) as conn:
        if conn.execute("select 1 from dentbook.public_clinic(%s)", (slug,)).fetchone():
            raise AdminError(f"a clinic with slug {slug!r} already exists")
        conn.execute(
            "insert into dentbook.tenants (id, slug, name, time_zone, default_locale, currency)"
            " values (%s, %s, %s, %s, %s, %s)", (new, slug, name, time_zone, locale, currency))
        # Its nightly retention run, from the start.
        conn.execute(retention.SCHEDULE)
    return new


def parse_hours(spec: str) -> list[tuple[int, time, time]]:
    """'mon-fri 09:00-17:00; sat 10:00-14:00' -> [(weekday, start, end), ...]."""
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    out: list[tuple[int, time, time]] = []
    for part in filter(None, (p.strip() for p in spec.lower().split(";"))):
        m = re.fullmatch(r"([a-z]{3})(?:-([a-z]{3}))?\s+(\d\d:\d\d)-(\d\d:\d\d)", part)
        if not m or m.group(1) not in days or (m.group(2) and m.group(2) not in days):
            raise AdminError(f"hours {part!r}: use e.g. 'mon-fri 09:00-17:00; sat 10:00-14:00'")
        first = days.index(m.group(1))
        last = days.index(m.group(2)) if m.group(2) else first
        try:
            start, end = time.fromisoformat(m.group(3)), time.fromisoformat(m.group(4))
        except ValueError:
            raise AdminError(f"hours {part!r}: not a valid time") from None
        if start >= end or first > last:
            raise AdminError(f"hours {part!r}: the range is empty")
        out += [(d + 1, start, end) for d in range(first, last + 1)]
    return out


def add_doctor(url: str, slug: str, name: str, hours: str = "mon-fri 09:00-17:00",
               days_off: list[date] | None = None) -> uuid.UUID:
    ranges = parse_hours(hours)
    with as_owner(url) as conn:
        tenant = clinic_id(conn, slug)
        try:
            row = conn.execute("insert into dentbook.doctors (tenant_id, name) values (%s, %s)"
                               " returning id", (tenant, name)).fetchone()
        except psycopg.errors.UniqueViolation:
            raise AdminError(f"{slug} already has a doctor named {name!r}") from None
        assert row is not None
        doctor: uuid.UUID = row[0]  # type: ignore[assignment]
        with conn.cursor() as cur:
            cur.executemany(
                "insert into dentbook.working_hours (tenant_id, doctor_id, weekday, start_time,"
                " end_time) values (%s, %s, %s, %s, %s) on conflict do nothing",
                [(tenant, doctor, d, s, e) for d, s, e in ranges])
            cur.executemany(
                "insert into dentbook.days_off (tenant_id, doctor_id, day) values (%s, %s, %s)"
                " on conflict do nothing", [(tenant, doctor, d) for d in days_off or []])
    return doctor


def add_visit_type(url: str, slug: str, name_pl: str, name_en: str, minutes: int,
                   deposit_minor: int) -> uuid.UUID:
    if not 5 <= minutes <= 480:
        raise AdminError("duration must be 5 to 480 minutes")
    if not 200 <= deposit_minor <= 10_000_000:
        raise AdminError("deposit must be 200 to 10000000 minor units (e.g. 5000 = 50.00)")
    with as_owner(url) as conn:
        tenant = clinic_id(conn, slug)
        try:
            row = conn.execute(
                "insert into dentbook.visit_types (tenant_id, name_pl, name_en, duration_minutes,"
                " deposit_minor) values (%s, %s, %s, %s, %s) returning id",
                (tenant, name_pl, name_en, minutes, deposit_minor)).fetchone()
        except psycopg.errors.UniqueViolation:
            raise AdminError(f"{slug} already has a visit type named {name_en!r}") from None
    assert row is not None
    return row[0]  # type: ignore[return-value]


ROLES = ("viewer", "reception", "admin")


def add_staff(url: str, slug: str, email: str, password: str,
              role: str | None = None) -> uuid.UUID:
    """Create a staff account with `role` (a new account without one is the clinic's own
    admin, as the operator's first account always was), or set an existing account's
    password, and its role only when one is given."""
    email = email.strip().lower()
    if not rules.valid_email(email):
        raise AdminError(f"{email!r} is not an e-mail address")
    if len(password) < 4:
        raise AdminError("the password must have at least 4 characters")
    if role is not None and role not in ROLES:
        raise AdminError(f"role {role!r}: use one of {', '.join(ROLES)}")
    with as_owner(url) as conn:
        tenant = clinic_id(conn, slug)
        row = conn.execute(
            "insert into dentbook.staff_accounts (tenant_id, email, password_hash, role)"
            " values (%s, %s, %s, coalesce(%s, 'admin')) on conflict (tenant_id, email)"
            " do update set password_hash = excluded.password_hash,"
            " role = coalesce(%s, dentbook.staff_accounts.role) returning id",
            (tenant, email, hash_password(password), role, role)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[return-value]
