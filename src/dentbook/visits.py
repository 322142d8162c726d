"""The patient's own visit after payment: their link, what it shows, and cancelling or
moving the visit through it (`sql/service-visits.sql` holds the rules).

A link's token is derived from the server's secret and the booking (HMAC-SHA256), so the
return page and every e-mail about a visit carry the same link without the token ever
being stored: the database keeps only its SHA-256, and can revoke it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import psycopg

from dentbook.booking import BookingView, view
from dentbook.db import Conn, Level, one
from dentbook.errors import DomainError, NotFound, SlotNotOffered, SlotTaken
from dentbook.forms import Instant
from dentbook.settings import Settings
from dentbook.tenancy import ClinicDb

# A link works until this long after its visit ends.
LINK_AFTER_VISIT = timedelta(days=7)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")

ADD_LINK = "select dentbook.add_visit_link(%s, %s, %s)"
GENERATION = "select dentbook.visit_link_generation(%s)"
BY_LINK = "select * from dentbook.visit_by_link(%s)"
CANCEL = "select dentbook.cancel_by_link(%s)"
RESCHEDULE = "select * from dentbook.reschedule_by_link(%s, %s, %s, %s, %s)"


class LinkNotFound(NotFound):
    """Unknown, tampered, expired or revoked: one answer, which says to call the clinic."""

    code = "visit_link"


class NotCancellable(DomainError):
    """Already cancelled, or the visit has started."""

    code = "not_cancellable"


class NotMovable(DomainError):
    """The cancellation window has closed (or the visit changed meanwhile)."""

    code = "not_movable"


@dataclass(frozen=True)
class Visit:
    """What the holder of a valid link may see."""

    id: UUID
    reference: str | None
    doctor_id: UUID
    doctor_name: str
    visit_type_id: UUID
    starts_at: datetime
    ends_at: datetime
    status: str
    locale: str
    amount_minor: int
    currency: str
    paid: bool
    refund_now: int
    refunded_minor: int | None
    reschedulable: bool
    cancellable: bool
    sequence: int
    link_expires_at: datetime


class RescheduleForm(msgspec.Struct, frozen=True):
    start: Instant


def token(secret: str, booking: UUID, generation: int = 0) -> str:
    """The booking's link token: 256 bits no one without the server's secret can make; each
    revocation moves the visit to the next generation, a new token."""
    message = b"visit:" + booking.bytes + (b":%d" % generation if generation else b"")
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_hash(value: str) -> bytes | None:
    """What the database keeps of a well-formed token (SHA-256), else None."""
    if not _TOKEN.fullmatch(value):
        return None
    return hashlib.sha256(value.encode("ascii")).digest()


def calendar_uid(booking: UUID, domain: str) -> str:
    """The calendar entry's UID, the same for the life of the visit."""
    return f"visit-{booking}@{domain}"


async def ensure_link(conn: Conn, secret: str, booking: UUID) -> str:
    """The booking's link token, its row made (or its expiry brought up to date) in this
    transaction (service level)."""
    row = await (await conn.execute(GENERATION, (booking,))).fetchone()
    value = token(secret, booking, int(str(row[0])) if row else 0)
    await conn.execute(ADD_LINK, (booking, token_hash(value), LINK_AFTER_VISIT))
    return value


async def outcome(conn: Conn, secret: str, booking_id: UUID) -> tuple[BookingView, str | None]:
    """A booking as its payment return page shows it, with the patient's link once the
    visit is confirmed (service level: the link's row is made here if it is not yet)."""
    found = await view(conn, booking_id)
    token_value = await ensure_link(conn, secret, booking_id) if found.status == "confirmed" else None
    return found, token_value


async def by_link(conn: Conn, value: str) -> Visit:
    """The visit behind a link, or NotFound (unknown, tampered, expired or revoked alike:
    the answer never says which visits exist)."""
    digest = token_hash(value)
    if digest is None:
        raise LinkNotFound()
    found = await one(conn, Visit, BY_LINK, (digest,))
    if found is None:
        raise LinkNotFound()
    return found


async def cancel(clinic_db: ClinicDb, value: str) -> int:
    """Cancel through the link; returns the refund owed (made after commit by a job)."""
    digest = token_hash(value)
    if digest is None:
        raise LinkNotFound()
    try:
        async with clinic_db.transaction(Level.SERVICE) as conn:
            row = await (await conn.execute(CANCEL, (digest,))).fetchone()
    except psycopg.Error as exc:
        raise _mapped(exc) from None
    return int(str(row[0])) if row else 0


async def reschedule(clinic_db: ClinicDb, settings: Settings, value: str,
                     start: datetime) -> tuple[datetime, datetime]:
    """Move the visit through the link: it moves or, with SlotTaken, stays where it was."""
    digest = token_hash(value)
    if digest is None:
        raise LinkNotFound()
    params = (digest, start.astimezone(UTC), timedelta(minutes=settings.min_notice_minutes),
              timedelta(weeks=settings.max_weeks_ahead + 1), LINK_AFTER_VISIT)
    try:
        async with clinic_db.transaction(Level.SERVICE) as conn:
            row = await (await conn.execute(RESCHEDULE, params)).fetchone()
    except psycopg.Error as exc:
        raise _mapped(exc) from None
    assert row is not None
    starts, ends = row
    assert isinstance(starts, datetime) and isinstance(ends, datetime)
    return starts, ends


def _mapped(exc: psycopg.Error) -> Exception:
    if isinstance(exc, psycopg.errors.ExclusionViolation):
        return SlotTaken()
    return {
        "DBK01": SlotNotOffered(),
        "DBK04": LinkNotFound(),
        "DBK10": NotCancellable(),
        "DBK11": NotMovable(),
    }.get(exc.sqlstate or "", exc)
