"""Staff accounts as the clinic's admin keeps them: invitations with a one-time
set-password link, roles, deactivation; and the invitee's side of the link.

Writes go through `sql/staff-admin.sql` at the staff level (the functions check the admin
role themselves, and keep the clinic from losing its last admin); the invitation link is
read and spent at the service level, since its holder is not signed in yet.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from dentbook import passwords, tokens
from dentbook.db import Conn, Level, one, rows
from dentbook.errors import Invalid
from dentbook.forms import VERBATIM, Email, Password
from dentbook.refusals import refused_as
from dentbook.tenancy import ClinicDb

INVITE_VALID = timedelta(hours=72)
RoleName = Literal["viewer", "reception", "admin"]
# A password someone chooses: long enough to resist guessing, short enough to hash quickly.
NewPassword = Annotated[str, msgspec.Meta(min_length=10, max_length=1024, extra=VERBATIM)]

ACCOUNTS = """select id, email, role, active, has_password, invite_expires_at, second_factor
              from dentbook.admin_staff()"""
INVITE = "select dentbook.admin_invite(%s, %s, %s, %s)"
REINVITE = "select dentbook.admin_reinvite(%s, %s, %s)"
SET_ROLE = "select dentbook.admin_set_role(%s, %s)"
SET_ACTIVE = "select dentbook.admin_set_active(%s, %s)"
LOOKUP = "select email, expired from dentbook.invite_lookup(%s)"
ACCEPT = "select dentbook.invite_accept(%s, %s)"


@dataclass(frozen=True)
class Account:
    id: UUID
    email: str
    role: str
    active: bool
    has_password: bool
    invite_expires_at: datetime | None
    second_factor: bool


@dataclass(frozen=True)
class Invitation:
    """What an invitation link opens: whose account, and whether it is too late."""

    email: str
    expired: bool


@dataclass(frozen=True)
class Issued:
    """A set-password link just made: shown once to the admin, never stored."""

    email: str
    token: str
    expires_at: datetime


class InviteForm(msgspec.Struct, frozen=True):
    email: Email
    role: RoleName


class RoleForm(msgspec.Struct, frozen=True):
    role: RoleName


class PasswordForm(msgspec.Struct, frozen=True):
    password: NewPassword
    password_again: Password


async def list_accounts(conn: Conn) -> list[Account]:
    return await rows(conn, Account, ACCOUNTS)


async def invite(conn: Conn, form: InviteForm, now: datetime | None = None) -> Issued:
    """A new account (or a new link for one invited before that never set a password)."""
    token, digest = tokens.new()
    expires = (now or datetime.now(UTC)) + INVITE_VALID
    email = form.email.lower()
    async with refused_as(conn, unique={"email": "account_exists"}, checked={"email": "invalid_email"}):
        await conn.execute(INVITE, (email, form.role, digest, expires))
    return Issued(email, token, expires)


async def reinvite(conn: Conn, staff_id: UUID, now: datetime | None = None) -> Issued:
    token, digest = tokens.new()
    expires = (now or datetime.now(UTC)) + INVITE_VALID
    async with refused_as(conn):
        row = await (await conn.execute(REINVITE, (staff_id, digest, expires))).fetchone()
    assert row is not None
    return Issued(str(row[0]), token, expires)


async def set_role(conn: Conn, staff_id: UUID, role: RoleName) -> None:
    async with refused_as(conn):
        await conn.execute(SET_ROLE, (staff_id, role))


async def set_active(conn: Conn, staff_id: UUID, active: bool) -> None:
    async with refused_as(conn):
        await conn.execute(SET_ACTIVE, (staff_id, active))


async def invitation(clinic: ClinicDb, token: str) -> Invitation | None:
    """The invitation behind a link, if it is one (expired ones too, to say so)."""
    digest = tokens.digest(token)
    if digest is None:
        return None
    async with clinic.transaction(Level.SERVICE) as conn:
        return await one(conn, Invitation, LOOKUP, (digest,))


def check_passwords(form: PasswordForm) -> str:
    if form.password != form.password_again:
        raise Invalid({"password_again": "password_mismatch"})
    return form.password


async def accept(clinic: ClinicDb, token: str, password: str) -> UUID | None:
    """Set the invitee's password and spend the link; None when the link no longer opens
    anything (used meanwhile, expired, withdrawn). The slow hash is made with no database
    connection held."""
    digest = tokens.digest(token)
    if digest is None:
        return None
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    async with clinic.transaction(Level.SERVICE) as conn:
        row = await (await conn.execute(ACCEPT, (digest, hashed))).fetchone()
    return row[0] if row and isinstance(row[0], UUID) else None
