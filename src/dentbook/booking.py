"""Booking: validating the patient's form, holding a slot, releasing it, and what the
patient may see of it afterwards. The guarantees are in `sql/service-booking.sql: hold_slot`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import psycopg

from dentbook.db import Conn, Level, one, rows
from dentbook.errors import NotFound, SlotNotOffered, SlotTaken, TooManyHolds
from dentbook.forms import Email, Instant, Name, PathId, Phone
from dentbook.settings import Settings
from dentbook.tenancy import ClinicDb


class BookingForm(msgspec.Struct, frozen=True):
    """The booking form's fields (§5). A malformed doctor or visit id is simply unknown."""

    doctor_id: PathId
    visit_type_id: PathId
    start: Instant
    name: Name
    email: Email
    phone: Phone | None = None


@dataclass(frozen=True)
class Hold:
    booking_id: UUID
    starts_at: datetime
    ends_at: datetime
    hold_expires_at: datetime
    amount_minor: int
    currency: str
    reused: bool  # the same browser's existing hold on this very slot
    stripe_session_id: str | None
    doctor_name: str
    visit_name_pl: str
    visit_name_en: str


@dataclass(frozen=True)
class BookingView:
    id: UUID
    doctor_name: str
    visit_name_pl: str
    visit_name_en: str
    starts_at: datetime
    ends_at: datetime
    status: str
    hold_lapsed: bool
    payment_processing: bool
    paid_after_expiry: bool
    amount_minor: int
    currency: str
    stripe_session_id: str | None
    hold_expires_at: datetime
    reference: str | None

    @property
    def held(self) -> bool:
        """An unpaid hold still waiting for its payment to start (it may be resumed)."""
        return self.status == "pending" and not self.hold_lapsed and not self.payment_processing

    @property
    def outcome(self) -> str:
        """What the patient should be told: processing, confirmed, refunded, failed..."""
        if self.status == "pending":
            return "expired" if self.hold_lapsed else "processing"
        return self.status

    def visit_name(self, locale: str) -> str:
        return self.visit_name_pl if locale == "pl" else self.visit_name_en


HOLDER_COOKIE = "dentbook_holder"
_HOLDER = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
HOLD_MARGIN_SECONDS = 60
HOLD_ATTEMPTS = 3

HOLD = """select * from dentbook.hold_slot(%(doctor)s, %(visit)s, %(start)s, %(name)s, %(email)s,
    %(phone)s, %(ip)s, %(locale)s, %(holder)s, %(hold)s, %(notice)s, %(window)s, %(per_email)s,
    %(per_ip)s)"""
ATTACH = "select dentbook.attach_checkout_session(%s, %s) as attached"
RELEASE = "select stripe_session_id from dentbook.release_hold(%s, %s)"
VIEW = "select * from dentbook.public_booking(%s)"
OWN_HOLDS = "select * from dentbook.public_own_holds(%s)"


def holder_token(current: str | None) -> str:
    """The browser's holder cookie value: its own if well formed, else a new random one."""
    return current if current and _HOLDER.fullmatch(current) else secrets.token_urlsafe(32)


def holder_hash(token: str | None) -> bytes | None:
    """What the database keeps of a holder cookie (SHA-256), or None if it is malformed."""
    if not token or not _HOLDER.fullmatch(token):
        return None
    return holder_digest(token)


def holder_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


async def hold(clinic_db: ClinicDb, req: BookingForm, client_ip: str | None, locale: str,
               holder: bytes, settings: Settings) -> Hold:
    """Hold the slot: one statement, its own transaction at service level, one round trip
    (a lost race costs nothing more). A deadlock is raised as it is: the caller asks again
    (see `payments.reserve_and_checkout`).

    `holder` is the SHA-256 of the browser's holder cookie: only that browser gets its own
    hold back by asking again (see `holder_hash`)."""
    ip = None
    if client_ip:
        try:
            ip = str(ipaddress.ip_address(client_ip))
        except ValueError:
            ip = None
    params = {
        "doctor": req.doctor_id, "visit": req.visit_type_id, "start": req.start.astimezone(UTC),
        "name": req.name, "email": req.email, "phone": req.phone or "", "ip": ip, "locale": locale,
        "holder": holder,
        # One minute over the configured hold, so that Stripe, which wants a Checkout
        # Session to live at least 30 minutes from its creation, accepts the hold's
        # expiry as the session's expires_at after the round trip.
        "hold": timedelta(minutes=settings.hold_minutes, seconds=HOLD_MARGIN_SECONDS),
        "notice": timedelta(minutes=settings.min_notice_minutes),
        "per_email": settings.max_holds_per_email, "per_ip": settings.max_holds_per_ip,
        "window": timedelta(weeks=settings.max_weeks_ahead + 1),
    }
    try:
        row = await clinic_db.one_shot(Level.SERVICE, Hold, HOLD, params)
    except psycopg.errors.DeadlockDetected:
        raise
    except (psycopg.errors.ExclusionViolation, psycopg.errors.UniqueViolation):
        raise SlotTaken() from None
    except psycopg.Error as exc:
        raise _mapped(exc) from None
    assert row is not None
    return row


def _mapped(exc: psycopg.Error) -> Exception:
    return {
        "DBK01": SlotNotOffered(),
        "DBK02": TooManyHolds("email"),
        "DBK03": TooManyHolds("client"),
        "DBK04": NotFound("doctor or visit type"),
    }.get(exc.sqlstate or "", exc)


@dataclass(frozen=True)
class Attached:
    attached: bool


async def attach_session(clinic_db: ClinicDb, booking: UUID, session_id: str) -> bool:
    """Write the Checkout Session's id on its hold: one statement, one round trip."""
    row = await clinic_db.one_shot(Level.SERVICE, Attached, ATTACH, (booking, session_id))
    return bool(row and row.attached)


async def release(conn: Conn, booking: UUID, reason: str) -> str | None:
    """Release a pending hold; returns its Checkout Session id when there was one."""
    row = await (await conn.execute(RELEASE, (booking, reason))).fetchone()
    return str(row[0]) if row and row[0] else None


async def view(conn: Conn, booking: UUID) -> BookingView:
    found = await one(conn, BookingView, VIEW, (booking,))
    if found is None:
        raise NotFound(str(booking))
    return found


@dataclass(frozen=True)
class OwnHold:
    """An unpaid hold of this browser, offered back to it on the clinic page."""

    id: UUID
    doctor_id: UUID
    doctor_name: str
    starts_at: datetime
    hold_expires_at: datetime
    stripe_session_id: str | None


async def own_holds(conn: Conn, holder: bytes | None) -> list[OwnHold]:
    """This browser's unpaid holds at the transaction's clinic (none without a cookie)."""
    if holder is None:
        return []
    return await rows(conn, OwnHold, OWN_HOLDS, (holder,))
