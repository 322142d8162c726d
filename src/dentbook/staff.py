"""Staff: signing in (argon2id, throttled), server-side sessions, and the read-only
dashboard of a clinic's upcoming appointments.

Sign-in and sessions go through the service-level functions of `sql/staff.sql`; the
dashboard itself reads at the staff level, where row level security is the only thing
keeping other clinics out (its queries deliberately carry no tenant filter).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg.rows import class_row

from dentbook import passwords
from dentbook.db import Conn, Database, Level, begin
from dentbook.errors import DomainError, Invalid
from dentbook.settings import Settings
from dentbook.tenancy import Clinic, Doctor, enter_clinic

COOKIE = "dentbook_staff"
# secrets.token_urlsafe(32): 256 random bits in 43 characters.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,189}")
MAX_ROWS = 500

CREDENTIALS = "select id, password_hash from dentbook.staff_credentials(%s)"
SET_HASH = "select dentbook.staff_set_hash(%s, %s)"
ATTEMPT = "select attempt, retry_after from dentbook.login_attempt(%s, %s, %s, %s, %s, %s)"
SESSION_START = "select dentbook.staff_session_start(%s, %s, %s, %s, %s, %s)"
SESSION_TOUCH = "select staff_id as id, email from dentbook.staff_session_touch(%s, %s)"
SESSION_END = "select dentbook.staff_session_end(%s)"

DOCTORS = "select id, name from dentbook.doctors order by name, id"
_APPOINTMENTS = """
select b.id, b.starts_at, upper(b.during) as ends_at,
       b.doctor_id, d.name as doctor_name, v.name_pl as visit_name_pl, v.name_en as visit_name_en,
       b.patient_name, b.patient_email, b.patient_phone,
       case when b.status = 'pending' and b.hold_expires_at <= now() then 'expired'
            else b.status end as status,
       b.payment_processing, b.paid_after_expiry
from dentbook.bookings b
join dentbook.doctors d on d.tenant_id = b.tenant_id and d.id = b.doctor_id
join dentbook.visit_types v on v.tenant_id = b.tenant_id and v.id = b.visit_type_id
"""
# No tenant filter on purpose: the staff level's RLS policy is what isolates clinics.
UPCOMING = _APPOINTMENTS + """
where b.starts_at >= %(from)s - dentbook.longest_visit() and b.starts_at < %(to)s
  and upper(b.during) > %(from)s
  and (%(doctor)s::uuid is null or b.doctor_id = %(doctor)s::uuid)
order by b.starts_at, d.name, b.id
limit %(limit)s
"""
APPOINTMENT = _APPOINTMENTS + "where b.id = %(id)s"


class LoginFailed(DomainError):
    """Unknown e-mail or wrong password: deliberately the same failure."""

    code = "login_failed"


class LoginThrottled(DomainError):
    code = "login_throttled"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class NotSignedIn(DomainError):
    """No valid staff session for this clinic."""

    code = "not_signed_in"


@dataclass(frozen=True)
class Credentials:
    id: UUID
    password_hash: str


@dataclass(frozen=True)
class StaffUser:
    id: UUID
    email: str


@dataclass(frozen=True)
class LoginForm:
    email: str
    password: str


@dataclass(frozen=True)
class SignedIn:
    clinic: Clinic
    token: str


@dataclass(frozen=True)
class Appointment:
    id: UUID
    starts_at: datetime
    ends_at: datetime
    doctor_id: UUID
    doctor_name: str
    visit_name_pl: str
    visit_name_en: str
    patient_name: str
    patient_email: str
    patient_phone: str | None
    status: str
    payment_processing: bool
    paid_after_expiry: bool

    def visit_name(self, locale: str) -> str:
        return self.visit_name_pl if locale == "pl" else self.visit_name_en

    def local_day(self, zone: ZoneInfo) -> date:
        return self.starts_at.astimezone(zone).date()


@dataclass(frozen=True)
class Dashboard:
    clinic: Clinic
    staff: StaffUser
    doctors: list[Doctor]
    appointments: list[Appointment]
    doctor: UUID | None
    day: date | None


def parse_login(raw: dict[str, str]) -> LoginForm:
    """The sign-in form's fields; raises Invalid (with the e-mail normalised) when unusable."""
    email = raw.get("email", "").strip().lower()
    password = raw.get("password", "")
    fields = {name: "required" for name, value in (("email", email), ("password", password))
              if not value}
    if email and (len(email) > 254 or not _EMAIL.fullmatch(email)):
        fields["email"] = "invalid_email"
    if fields:
        raise Invalid(fields)
    return LoginForm(email, password)


def session_hash(token: str | None) -> bytes | None:
    """SHA-256 of a well-formed session id (all the database ever stores), else None."""
    if token is None or not _TOKEN.fullmatch(token):
        return None
    return hashlib.sha256(token.encode("ascii")).digest()


def stream_key(token: str | None) -> str | None:
    """What `staff_session_end` announces for this session: SHA-256 of its stored hash."""
    digest = session_hash(token)
    return hashlib.sha256(digest).hexdigest() if digest else None


async def sign_in(db: Database, settings: Settings, slug: str, form: LoginForm,
                  client_ip: str | None, old_token: str | None) -> SignedIn:
    """Check the password and start a fresh session, or raise LoginFailed / LoginThrottled.

    The attempt is counted (as a failure) and the throttle decided in one committed step
    before the password is checked, so concurrent guesses cannot slip past the count; a
    success then forgets it. An unknown e-mail costs the same argon2 verification as a
    wrong password. The pool connection is given back during the verification, so a burst
    of attempts cannot hold the pool.
    """
    ip = _inet(client_ip)
    async with db.transaction(Level.SERVICE) as conn:
        clinic = await enter_clinic(conn, slug)
        row = await (await conn.execute(ATTEMPT, (
            form.email, ip, timedelta(minutes=settings.staff_login_window_minutes),
            settings.staff_login_max_failures, settings.staff_login_max_failures_per_account,
            settings.staff_login_max_failures_per_ip))).fetchone()
        assert row is not None
        attempt, wait = row
        if wait is not None:
            raise LoginThrottled(max(1, int(str(wait))))
        async with conn.cursor(row_factory=class_row(Credentials)) as cur:
            await cur.execute(CREDENTIALS, (form.email,))
            creds = await cur.fetchone()
    stored = creds.password_hash if creds else passwords.DUMMY_HASH
    ok = await asyncio.to_thread(passwords.verify, stored, form.password) and creds is not None
    if creds is None or not ok:
        raise LoginFailed()  # the attempt is already recorded as a failure
    fresh = None
    if passwords.needs_rehash(stored):
        fresh = await asyncio.to_thread(passwords.hash_password, form.password)
    token = secrets.token_urlsafe(32)
    async with db.transaction(Level.SERVICE, clinic.id) as conn:
        if fresh is not None:
            await conn.execute(SET_HASH, (creds.id, fresh))
        await conn.execute(SESSION_START, (
            creds.id, session_hash(token), session_hash(old_token),
            timedelta(minutes=settings.staff_idle_minutes),
            timedelta(hours=settings.staff_session_hours), attempt))
    return SignedIn(clinic, token)


async def current_staff(conn: Conn, settings: Settings, token: str | None) -> StaffUser | None:
    """Who holds this session at the transaction's clinic (service level); refreshes it."""
    digest = session_hash(token)
    if digest is None:
        return None
    async with conn.cursor(row_factory=class_row(StaffUser)) as cur:
        await cur.execute(SESSION_TOUCH, (digest, timedelta(minutes=settings.staff_idle_minutes)))
        return await cur.fetchone()


async def signed_in_clinic(db: Database, settings: Settings, slug: str,
                           token: str | None) -> tuple[Clinic, StaffUser | None]:
    """The clinic at `slug` and the staff member signed in there, if any."""
    async with db.transaction(Level.SERVICE) as conn:
        clinic = await enter_clinic(conn, slug)
        return clinic, await current_staff(conn, settings, token)


async def sign_out(db: Database, slug: str, token: str | None) -> Clinic:
    """End this browser's session at the clinic (nothing to end is not an error)."""
    async with db.transaction(Level.SERVICE) as conn:
        clinic = await enter_clinic(conn, slug)
        digest = session_hash(token)
        if digest is not None:
            await conn.execute(SESSION_END, (digest,))
    return clinic


async def load_dashboard(db: Database, settings: Settings, slug: str, token: str | None,
                         doctor: str | None, day: str | None) -> Dashboard:
    """Check the session (service level), then read as staff under RLS for that clinic.

    Raises NotSignedIn (carrying nothing) before looking at the filters, and Invalid
    for a filter that is not a date or not one of the clinic's doctors.
    """
    async with db.connection() as conn:
        async with begin(conn, Level.SERVICE) as tx:
            clinic = await enter_clinic(tx, slug)
            staff = await current_staff(tx, settings, token)
        if staff is None:
            raise NotSignedIn()
        chosen_day = parse_day(day)
        async with begin(conn, Level.STAFF, clinic.id) as tx:
            doctors = await list_doctors(tx)
            chosen = parse_doctor(doctor, doctors)
            rows = await upcoming(tx, clinic.zone, doctor=chosen, day=chosen_day)
    return Dashboard(clinic, staff, doctors, rows, chosen, chosen_day)


def parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        day = None
    if day is None or not 2000 <= day.year <= 2999:  # also keeps day + 1 from overflowing
        raise Invalid({"day": "invalid_day"})
    return day


def parse_doctor(value: str | None, doctors: list[Doctor]) -> UUID | None:
    if not value:
        return None
    try:
        wanted = UUID(value) if len(value) <= 36 else None
    except ValueError:
        wanted = None
    if wanted is None or all(d.id != wanted for d in doctors):
        raise Invalid({"doctor": "invalid_doctor"})
    return wanted


async def list_doctors(conn: Conn) -> list[Doctor]:
    """Every doctor of the transaction's clinic (staff level), for the filter."""
    async with conn.cursor(row_factory=class_row(Doctor)) as cur:
        await cur.execute(DOCTORS)
        return await cur.fetchall()


async def upcoming(conn: Conn, zone: ZoneInfo, *, doctor: UUID | None = None,
                   day: date | None = None, now: datetime | None = None) -> list[Appointment]:
    """Appointments not yet over (or all of one local day), in time order (staff level)."""
    if day is None:
        start, end = now or datetime.now(UTC), datetime.max.replace(tzinfo=UTC)
    else:
        start = datetime.combine(day, time(0), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    async with conn.cursor(row_factory=class_row(Appointment)) as cur:
        await cur.execute(UPCOMING, {"from": start, "to": end, "doctor": doctor,
                                     "limit": MAX_ROWS})
        return await cur.fetchall()


async def appointment(conn: Conn, booking_id: UUID) -> Appointment | None:
    """One row of the dashboard (staff level), e.g. to send it alone over SSE."""
    async with conn.cursor(row_factory=class_row(Appointment)) as cur:
        await cur.execute(APPOINTMENT, {"id": booking_id})
        return await cur.fetchone()


def _inet(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host) if host else None
    except ValueError:
        return None
