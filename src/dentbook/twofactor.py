"""A staff account's second factor: the sign-in's second step, enrolment, turning it off.

The codes themselves are `dentbook.totp`'s (RFC 6238, recovery codes); this module keeps
their state in the database through `sql/service-signin.sql`. A TOTP code is accepted once:
the time step it matched is stored with a compare-and-set, so a replay, or the same code sent
twice at once, is refused. Every code typed is counted against the account and the client's
address like a password (`staff.count_attempt`), so a second factor cannot be guessed faster
than a password. Enrolment shows the secret until it is confirmed with a code; after that the
server never shows it again, and ten recovery codes are shown once and stored hashed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from uuid import UUID

import msgspec

from dentbook import staff, totp
from dentbook.db import Conn, Level, one
from dentbook.errors import DomainError
from dentbook.forms import Password
from dentbook.settings import Settings
from dentbook.staff import LoginFailed, StaffUser, session_hash
from dentbook.tenancy import ClinicDb

CHALLENGE = ("select staff_id, email, totp_secret, totp_last_counter"
             " from dentbook.staff_challenge(%s)")
SECOND_FACTOR = ("select staff_id, email, totp_secret, totp_last_counter"
                 " from dentbook.staff_second_factor(%s)")
TOTP_USED = "select dentbook.staff_totp_used(%s, %s)"
RECOVERY_USED = "select dentbook.staff_recovery_used(%s, %s)"
STATE = "select enabled, pending_secret, recovery_left from dentbook.staff_totp_state(%s)"
BEGIN = "select dentbook.staff_totp_begin(%s, %s)"
CONFIRM = "select dentbook.staff_totp_confirm(%s, %s, %s)"
DISABLE = "select dentbook.staff_totp_disable(%s, %s, %s)"
RECOVERY_CODES = 10


class ChallengeExpired(DomainError):
    """The second step of a sign-in came too late, or without its first step."""

    code = "challenge_expired"


class WrongCode(DomainError):
    code = "wrong_code"


class CodeForm(msgspec.Struct, frozen=True):
    """A six-digit TOTP code or a recovery code, as typed."""

    code: Password


@dataclass(frozen=True)
class Factor:
    staff_id: UUID
    email: str
    totp_secret: str
    totp_last_counter: int | None


@dataclass(frozen=True)
class State:
    enabled: bool
    pending_secret: str | None
    recovery_left: int


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret, its URI for the QR code."""

    secret: str
    uri: str


async def second_step(clinic: ClinicDb, settings: Settings, challenge_token: str | None,
                      form: CodeForm, client_ip: str | None, old_token: str | None) -> str:
    """The code of a sign-in whose password was right: a TOTP code (refused if its time step
    or a later one was used before) or an unused recovery code. Starts the session (returns
    its cookie value), or raises ChallengeExpired / LoginFailed / LoginThrottled."""
    digest = session_hash(challenge_token)
    if digest is None:
        raise ChallengeExpired()
    async with clinic.transaction(Level.SERVICE) as conn:
        factor = await _factor(conn, CHALLENGE, (digest,))
        if factor is None:
            raise ChallengeExpired()
        attempt = await staff.count_attempt(conn, settings, factor.email, client_ip)
    token = secrets.token_urlsafe(32)
    async with clinic.transaction(Level.SERVICE) as conn:
        method = await _use_code(conn, factor, form.code)
        if method is None:
            raise LoginFailed()  # wrong, replayed, or a recovery code used already
        await staff.start_session(conn, settings, factor.staff_id, token, old_token, attempt,
                                  f"password and {method}")
    return token


async def overview(clinic: ClinicDb, user: StaffUser, issuer: str) -> tuple[State, Enrolment | None]:
    """The account's factor: on or not, and, when not, the enrolment to show (started now,
    or the one already started: a reload shows the QR code already scanned)."""
    async with clinic.transaction(Level.SERVICE) as conn:
        current = await one(conn, State, STATE, (user.id,))
        if current is None:
            raise staff.NotSignedIn()  # the account was deactivated meanwhile
        if current.enabled:
            return current, None
        row = await (await conn.execute(BEGIN, (user.id, totp.new_secret()))).fetchone()
    if row is None or not isinstance(row[0], str):
        return current, None
    return current, Enrolment(row[0], totp.provisioning_uri(row[0], user.email, issuer))


async def confirm(clinic: ClinicDb, user: StaffUser, code: str) -> list[str]:
    """Turn the factor on with a code from the app: returns the recovery codes to show
    once (only their hashes are kept); WrongCode when the code does not match."""
    async with clinic.transaction(Level.SERVICE) as conn:
        current = await one(conn, State, STATE, (user.id,))
        if current is None or current.enabled or current.pending_secret is None:
            raise WrongCode()
        counter = totp.verify(current.pending_secret, code, None)
        if counter is None:
            raise WrongCode()
        codes = totp.new_recovery_codes(RECOVERY_CODES)
        hashes = [totp.hash_recovery_code(c) for c in codes]
        row = await (await conn.execute(CONFIRM, (user.id, counter, hashes))).fetchone()
        if not row or not row[0]:
            raise WrongCode()
    return codes


async def disable(clinic: ClinicDb, settings: Settings, user: StaffUser, code: str,
                  client_ip: str | None) -> None:
    """Turn the factor off with a current code (TOTP or recovery), counted like a sign-in
    attempt; WrongCode (or LoginThrottled) otherwise."""
    async with clinic.transaction(Level.SERVICE) as conn:
        factor = await _factor(conn, SECOND_FACTOR, (user.id,))
        if factor is None:
            raise WrongCode()
        attempt = await staff.count_attempt(conn, settings, factor.email, client_ip)
    async with clinic.transaction(Level.SERVICE) as conn:
        counter = totp.verify(factor.totp_secret, code, factor.totp_last_counter)
        recovery = totp.normalise_recovery_code(code) if counter is None else None
        hashed = totp.hash_recovery_code(recovery) if recovery else None
        row = await (await conn.execute(DISABLE, (user.id, counter, hashed))).fetchone()
        if not row or not row[0]:
            raise WrongCode()
        await staff.attempt_passed(conn, attempt)


async def _factor(conn: Conn, query: str, params: tuple[object, ...]) -> Factor | None:
    return await one(conn, Factor, query, params)


async def _use_code(conn: Conn, factor: Factor, code: str) -> str | None:
    """Use up `code` if it is right: returns what it was, or None."""
    counter = totp.verify(factor.totp_secret, code, factor.totp_last_counter)
    if counter is not None:
        row = await (await conn.execute(TOTP_USED, (factor.staff_id, counter))).fetchone()
        return "authenticator code" if row and row[0] else None
    recovery = totp.normalise_recovery_code(code)
    if recovery is None:
        return None
    row = await (await conn.execute(RECOVERY_USED, (factor.staff_id,
                                                    totp.hash_recovery_code(recovery)))).fetchone()
    return "recovery code" if row and row[0] else None
