"""Staff: signing in (argon2id, throttled), server-side sessions, and roles.

Sign-in and sessions go through the service-level functions of `sql/service-signin.sql`.
A session cookie holds a random id; the database keeps only its hash. Roles rank
viewer < reception < admin: the web layer's guards check them, and the SQL functions that
write check them again from the account set for the transaction.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import msgspec
from psycopg.rows import class_row

from dentbook import passwords
from dentbook.db import Conn, Level
from dentbook.errors import DomainError
from dentbook.forms import Email, Password
from dentbook.settings import Settings
from dentbook.tenancy import ClinicDb

COOKIE = "dentbook_staff"
# secrets.token_urlsafe(32): 256 random bits in 43 characters.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")

CREDENTIALS = "select id, password_hash from dentbook.staff_credentials(%s)"
SET_HASH = "select dentbook.staff_set_hash(%s, %s)"
ATTEMPT = "select attempt, retry_after from dentbook.login_attempt(%s, %s, %s, %s, %s, %s)"
SESSION_START = "select dentbook.staff_session_start(%s, %s, %s, %s, %s, %s)"
SESSION_TOUCH = "select staff_id as id, email, role from dentbook.staff_session_touch(%s, %s)"
SESSION_END = "select dentbook.staff_session_end(%s)"


class Role(enum.IntEnum):
    """What a staff account may do; each role may do everything the lower ones may."""

    VIEWER = 1
    RECEPTION = 2
    ADMIN = 3

    @classmethod
    def named(cls, name: str) -> Role:
        return cls[name.upper()]


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


class Forbidden(DomainError):
    """Signed in, but the account's role may not do this."""

    code = "forbidden"


@dataclass(frozen=True)
class Credentials:
    id: UUID
    password_hash: str


@dataclass(frozen=True)
class StaffUser:
    id: UUID
    email: str
    role: str

    @property
    def rank(self) -> Role:
        return Role.named(self.role)

    def may(self, role: Role) -> bool:
        return self.rank >= role


class LoginForm(msgspec.Struct, frozen=True):
    email: Email
    password: Password


def session_hash(token: str | None) -> bytes | None:
    """SHA-256 of a well-formed session id (all the database ever stores), else None."""
    if token is None or not _TOKEN.fullmatch(token):
        return None
    return hashlib.sha256(token.encode("ascii")).digest()


def stream_key(token: str | None) -> str | None:
    """What `staff_session_end` announces for this session: SHA-256 of its stored hash."""
    digest = session_hash(token)
    return hashlib.sha256(digest).hexdigest() if digest else None


async def sign_in(clinic: ClinicDb, settings: Settings, form: LoginForm,
                  client_ip: str | None, old_token: str | None) -> str:
    """Check the password and start a fresh session (returns its cookie value), or raise
    LoginFailed / LoginThrottled.

    The attempt is counted (as a failure) and the throttle decided in one committed step
    before the password is checked, so concurrent guesses cannot slip past the count; a
    success then forgets it. An unknown e-mail costs the same argon2 verification as a
    wrong password. The pool connection is given back during the verification, so a burst
    of attempts cannot hold the pool.
    """
    email = form.email.lower()
    async with clinic.transaction(Level.SERVICE) as conn:
        row = await (await conn.execute(ATTEMPT, (
            email, _inet(client_ip), timedelta(minutes=settings.staff_login_window_minutes),
            settings.staff_login_max_failures, settings.staff_login_max_failures_per_account,
            settings.staff_login_max_failures_per_ip))).fetchone()
        assert row is not None
        attempt, wait = row
        if wait is not None:
            raise LoginThrottled(max(1, int(str(wait))))
        async with conn.cursor(row_factory=class_row(Credentials)) as cur:
            await cur.execute(CREDENTIALS, (email,))
            creds = await cur.fetchone()
    stored = creds.password_hash if creds else passwords.DUMMY_HASH
    ok = await asyncio.to_thread(passwords.verify, stored, form.password) and creds is not None
    if creds is None or not ok:
        raise LoginFailed()  # the attempt is already recorded as a failure
    fresh = None
    if passwords.needs_rehash(stored):
        fresh = await asyncio.to_thread(passwords.hash_password, form.password)
    token = secrets.token_urlsafe(32)
    async with clinic.transaction(Level.SERVICE) as conn:
        if fresh is not None:
            await conn.execute(SET_HASH, (creds.id, fresh))
        await conn.execute(SESSION_START, (
            creds.id, session_hash(token), session_hash(old_token),
            timedelta(minutes=settings.staff_idle_minutes),
            timedelta(hours=settings.staff_session_hours), attempt))
    return token


async def current_staff(clinic: ClinicDb, settings: Settings, token: str | None) -> StaffUser | None:
    """Who holds this session at the clinic, if anyone; using it restarts its idle limit."""
    digest = session_hash(token)
    if digest is None:
        return None
    async with clinic.transaction(Level.SERVICE) as conn, \
            conn.cursor(row_factory=class_row(StaffUser)) as cur:
        await cur.execute(SESSION_TOUCH, (digest, timedelta(minutes=settings.staff_idle_minutes)))
        return await cur.fetchone()


async def sign_out(conn: Conn, token: str | None) -> None:
    """End this browser's session at the transaction's clinic (service level); nothing to
    end is not an error."""
    digest = session_hash(token)
    if digest is not None:
        await conn.execute(SESSION_END, (digest,))


def _inet(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host) if host else None
    except ValueError:
        return None
