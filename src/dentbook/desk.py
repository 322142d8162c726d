"""The front desk (§9): a visit taken by phone, blocked time, moving, cancelling and
attendance, as reception does them.

Each action is one call to its SQL function in `sql/staff-desk.sql` (which checks the
account's role itself, decides races with the exclusion constraint and writes the audit
row), inside a savepoint of the request's staff transaction, so a refusal leaves the
transaction usable to say what the time collided with. Failures map to the named errors
below in one place (`_mapped`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
import psycopg

from dentbook import agenda, rules
from dentbook.agenda import Appointment
from dentbook.db import Conn
from dentbook.errors import DomainError, Invalid, NotFound, SlotNotOffered, SlotTaken
from dentbook.forms import Email, Name, Note, PathId, Phone, parse
from dentbook.staff import Forbidden

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)

# The front desk books up to a year ahead (patients online: DENTBOOK_MAX_WEEKS_AHEAD).
WINDOW = timedelta(days=366)
ATTEMPTS = 3

BOOK = "select * from dentbook.desk_book(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
BLOCK = "select dentbook.desk_block(%s, %s, %s, %s)"
UNBLOCK = "select dentbook.desk_unblock(%s)"
MOVE = "select * from dentbook.desk_move(%s, %s, %s, %s)"
CANCEL = "select dentbook.desk_cancel(%s, %s)"
ATTENDANCE = "select dentbook.desk_attendance(%s, %s)"
REVOKE_LINK = "select dentbook.desk_revoke_link(%s)"

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=rules.NAME_PATTERN)]
CancelReason = Annotated[str, msgspec.Meta(min_length=1, max_length=500,
                                           pattern=rules.NAME_PATTERN)]
# A wall-clock time in the clinic's zone (as `<input type="datetime-local">` sends it) or
# an instant with its offset (as slot links carry it).
When = datetime
_MINUTES_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


class PhoneBooking(msgspec.Struct, frozen=True):
    doctor_id: PathId
    visit_type_id: PathId
    start: When
    name: Name
    phone: Phone
    email: Email | None = None
    note: Note | None = None
    locale: Literal["pl", "en"] | None = None


class BlockForm(msgspec.Struct, frozen=True):
    doctor_id: PathId
    start: When
    end: When
    reason: Reason


class MoveForm(msgspec.Struct, frozen=True):
    start: When
    doctor_id: PathId | None = None


class CancelForm(msgspec.Struct, frozen=True):
    reason: CancelReason


class AttendanceForm(msgspec.Struct, frozen=True):
    state: Literal["arrived", "no_show", "completed"]


class Clash(SlotTaken):
    """The time overlaps an active visit or block: `conflict` is that entry (when it could
    still be read), so the answer can name it."""

    def __init__(self, conflict: Appointment | None) -> None:
        super().__init__("the time overlaps another visit or block")
        self.conflict = conflict


class WrongState(DomainError):
    """The visit or block is no longer in a state for this (cancelled, begun, attended)."""

    code = "wrong_state"


class TooEarly(DomainError):
    """Attendance for a visit more than 30 minutes away."""

    code = "too_early"


@dataclass(frozen=True)
class Booked:
    booking_id: UUID
    reference: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Moved:
    starts_at: datetime
    ends_at: datetime
    doctor_id: UUID


# Parse-layer message ids the front desk words differently (the phone is required here).
_RENAMED = {"invalid_phone": "invalid_phone_required"}


def read_form(model: type[S], raw: Mapping[str, Any], zone: ZoneInfo) -> S:
    """A front-desk form as `model`: wall-clock times are read in the clinic's zone."""
    values = {k: (v.strip() + ":00" if k in ("start", "end") and isinstance(v, str)
                  and _MINUTES_ONLY.fullmatch(v.strip()) else v) for k, v in raw.items()}
    try:
        form = parse(model, values)
    except Invalid as exc:
        raise Invalid({k: _RENAMED.get(v, v) for k, v in exc.fields.items()}) from None
    changes = {name: getattr(form, name).replace(tzinfo=zone)
               for name in ("start", "end") if isinstance(getattr(form, name, None), datetime)
               and getattr(form, name).tzinfo is None}
    return msgspec.structs.replace(form, **changes) if changes else form


async def book_by_phone(conn: Conn, form: PhoneBooking, default_locale: str) -> Booked:
    row = await _run(conn, BOOK, (
        form.doctor_id, form.visit_type_id, form.start, form.name, form.phone, form.email or "",
        form.note or "", form.locale or default_locale, WINDOW))
    return Booked(*row)  # type: ignore[arg-type]


async def block(conn: Conn, form: BlockForm) -> UUID:
    row = await _run(conn, BLOCK, (form.doctor_id, form.start, form.end, form.reason))
    return row[0]  # type: ignore[return-value]


async def unblock(conn: Conn, block_id: UUID) -> None:
    await _run(conn, UNBLOCK, (block_id,))


async def move(conn: Conn, booking_id: UUID, form: MoveForm) -> Moved:
    row = await _run(conn, MOVE, (booking_id, form.start, form.doctor_id, WINDOW))
    return Moved(*row)  # type: ignore[arg-type]


async def cancel(conn: Conn, booking_id: UUID, form: CancelForm) -> int:
    """Cancel for the clinic; returns the refund owed (minor units, made after commit)."""
    row = await _run(conn, CANCEL, (booking_id, form.reason))
    return int(str(row[0]))


async def attendance(conn: Conn, booking_id: UUID, form: AttendanceForm) -> bool:
    """Mark attendance; False when it was already so (nothing changed)."""
    row = await _run(conn, ATTENDANCE, (booking_id, form.state))
    return bool(row[0])


async def revoke_link(conn: Conn, booking_id: UUID) -> int:
    """Revoke the patient's link to the visit; how many links were live."""
    row = await _run(conn, REVOKE_LINK, (booking_id,))
    return int(str(row[0]))


async def _run(conn: Conn, statement: str, params: tuple[object, ...]) -> tuple[object, ...]:
    async def attempt() -> tuple[object, ...]:
        async with conn.transaction():
            row = await (await conn.execute(statement, params)).fetchone()
        assert row is not None
        return row

    return await _mapped(conn, attempt)


async def _mapped(conn: Conn, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt` (one savepoint), again if PostgreSQL chose it as a deadlock victim;
    turn a refusal into its named error."""
    for tries in range(ATTEMPTS):
        try:
            return await attempt()
        except psycopg.errors.DeadlockDetected:
            if tries == ATTEMPTS - 1:
                raise
        except psycopg.errors.ExclusionViolation as exc:
            raise Clash(await _conflict(conn, exc.diag.message_detail)) from None
        except psycopg.Error as exc:
            raise _refusal(exc) from None
    raise AssertionError("unreachable")


def _refusal(exc: psycopg.Error) -> Exception:
    known: dict[str, Callable[[], Exception]] = {
        "DBK40": Forbidden,
        "DBK04": lambda: NotFound("doctor, visit type, visit or block"),
        "DBK01": SlotNotOffered,
        "DBK21": WrongState,
        "DBK22": TooEarly,
        "DBK23": lambda: Invalid({"start": "same_time"}),
        "DBK24": lambda: Invalid({"end": "invalid_end"}),
        "DBK25": lambda: Invalid({"end": "block_too_long"}),
        "DBK26": lambda: Invalid({"state": "invalid_state"}),
    }
    make = known.get(exc.sqlstate or "")
    return make() if make else exc


async def _conflict(conn: Conn, detail: str | None) -> Appointment | None:
    try:
        found = UUID(detail or "")
    except ValueError:
        return None
    return await agenda.appointment(conn, found)
