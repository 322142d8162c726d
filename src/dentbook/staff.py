"""Staff: signing in (argon2id, then a TOTP code or a recovery code when the account has a
second factor; every step throttled), server-side sessions, and roles.

Sign-in and sessions go through the service-level functions of `sql/service-signin.sql`.
A session cookie holds a random id; the database keeps only its hash. So does the short-lived
challenge cookie of a sign-in whose password was right and whose second factor is still due.
Roles rank viewer < reception < admin: the web layer's guards check them, and the SQL
functions that write check them again from the account set for the transaction.
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

from dentbook import passwords
from dentbook.db import Conn, Level, one
from dentbook.errors import DomainError
from dentbook.forms import Email, Password
from dentbook.settings import Settings
from dentbook.tenancy import ClinicDb

COOKIE = "dentbook_staff"
# The second step of a sign-in: a random id whose hash names the pending challenge.
CHALLENGE_COOKIE = "dentbook_staff_2fa"
CHALLENGE_MINUTES = 5
# secrets.token_urlsafe(32): 256 random bits in 43 characters.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")

CREDENTIALS = "select id, password_hash, second_factor from dentbook.staff_credentials(%s)"
SET_HASH = "select dentbook.staff_set_hash(%s, %s)"
ATTEMPT = "select attempt, retry_after from dentbook.login_attempt(%s, %s, %s, %s, %s, %s)"
ATTEMPT_PASSED = "select dentbook.login_attempt_passed(%s)"
SESSION_START = "select dentbook.staff_session_start(%s, %s, %s, %s, %s, %s, %s)"
CHALLENGE_START = "select dentbook.staff_challenge_start(%s, %s, %s, %s)"
SESSION_TOUCH = ("select staff_id as id, email, role, must_enrol"
                 " from dentbook.staff_session_touch(%s, %s)")
SESSION_END = "select dentbook.staff_session_end(%s)"
SESSIONS_END_ALL = "select dentbook.staff_sessions_end_all(%s)"


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


class MustEnrol(DomainError):
    """An admin of a clinic that requires a second factor has none yet: enrol first."""

    code = "must_enrol"


class Forbidden(DomainError):
    """Signed in, but the account's role may not do this."""

    code = "forbidden"


@dataclass(frozen=True)
class Credentials:
    id: UUID
    password_hash: str
    second_factor: bool


@dataclass(frozen=True)
class SignIn:
    """A sign-in's outcome: a session cookie's value, or (`second_factor`) the challenge
    cookie's value of a sign-in that still needs its code."""

    token: str
    second_factor: bool = False


@dataclass(frozen=True)
class StaffUser:
    id: UUID
    email: str
    role: str
    must_enrol: bool = False

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
                  client_ip: str | None, old_token: str | None) -> SignIn:
    """Check the password and start a fresh session, or, for an account with a second
    factor, a challenge for its code; raise LoginFailed / LoginThrottled.

    The attempt is counted (as a failure) and the throttle decided in one committed step
    before the password is checked, so concurrent guesses cannot slip past the count; a
    success then forgets it. An unknown e-mail costs the same argon2 verification as a
    wrong password. The pool connection is given back during the verification, so a burst
    of attempts cannot hold the pool.
    """
    email = form.email.lower()
    async with clinic.transaction(Level.SERVICE) as conn:
        attempt = await count_attempt(conn, settings, email, client_ip)
        creds = await one(conn, Credentials, CREDENTIALS, (email,))
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
        if creds.second_factor:
            await conn.execute(CHALLENGE_START, (creds.id, session_hash(token),
                                                 timedelta(minutes=CHALLENGE_MINUTES), attempt))
            return SignIn(token, second_factor=True)
        await start_session(conn, settings, creds.id, token, old_token, attempt, "password")
    return SignIn(token)


async def current_staff(clinic: ClinicDb, settings: Settings, token: str | None) -> StaffUser | None:
    """Who holds this session at the clinic, if anyone; using it restarts its idle limit."""
    digest = session_hash(token)
    if digest is None:
        return None
    async with clinic.transaction(Level.SERVICE) as conn:
        idle = timedelta(minutes=settings.staff_idle_minutes)
        return await one(conn, StaffUser, SESSION_TOUCH, (digest, idle))


async def sign_out(conn: Conn, token: str | None) -> None:
    """End this browser's session at the transaction's clinic (service level); nothing to
    end is not an error."""
    digest = session_hash(token)
    if digest is not None:
        await conn.execute(SESSION_END, (digest,))


async def sign_out_everywhere(conn: Conn, token: str | None) -> int:
    """End every session of the account holding this one (service level), their live
    streams too; returns how many ended."""
    digest = session_hash(token)
    if digest is None:
        return 0
    row = await (await conn.execute(SESSIONS_END_ALL, (digest,))).fetchone()
    return int(str(row[0])) if row else 0


async def attempt_passed(conn: Conn, attempt: int) -> None:
    """Forget a counted attempt whose code was right but started no session."""
    await conn.execute(ATTEMPT_PASSED, (attempt,))


async def count_attempt(conn: Conn, settings: Settings, email: str, client_ip: str | None) -> int:
    """Count an attempt to sign in as `email` from `client_ip` (service level), recorded as
    a failure until a success forgets it: LoginThrottled while too many failed, otherwise
    the attempt's id. Passwords and second-factor codes count against the same limits."""
    row = await (await conn.execute(ATTEMPT, (
        email, _inet(client_ip), timedelta(minutes=settings.staff_login_window_minutes),
        settings.staff_login_max_failures, settings.staff_login_max_failures_per_account,
        settings.staff_login_max_failures_per_ip))).fetchone()
    assert row is not None
    attempt, wait = row
    if wait is not None:
        raise LoginThrottled(max(1, int(str(wait))))
    return int(str(attempt))


async def start_session(conn: Conn, settings: Settings, staff_id: UUID, token: str,
                        old_token: str | None, attempt: int, method: str) -> None:
    """Start the session `token` names (its hash stored), ending the browser's old one, and
    forget the failures the counted `attempt` stood for; logged with `method`."""
    await conn.execute(SESSION_START, (
        staff_id, session_hash(token), session_hash(old_token),
        timedelta(minutes=settings.staff_idle_minutes),
        timedelta(hours=settings.staff_session_hours), attempt, method))


def _inet(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host) if host else None
    except ValueError:
        return None
