"""Doctors as the clinic's admin keeps them: names, the active flag, weekly hours (several
ranges a day), days off and holidays, and the visits a change leaves outside the hours.

Hours are typed per weekday as text ("09:00-13:00, 14:00-18:00"), so the form needs no
script; each day is checked on its own (shape, start before end, no overlap) and every
error is shown beside its day. Changing hours never moves a booked visit: the doctor's page
lists every future visit the hours no longer cover, for reception to move.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from dentbook import rules
from dentbook.availability import Hours
from dentbook.db import Conn, one, rows
from dentbook.errors import Invalid
from dentbook.forms import Day, Name
from dentbook.refusals import refused_as

WEEKDAYS = range(1, 8)  # ISO: 1 = Monday
OUTSIDE_LIMIT = 100
_RANGE = re.compile(r"(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})")

DOCTORS = """select id, name, active, feed_hash is not null as has_feed
             from dentbook.doctors order by name, id"""
DOCTOR = """select id, name, active, feed_hash is not null as has_feed
            from dentbook.doctors where id = %s"""
HOURS = """select weekday, start_time, end_time from dentbook.working_hours
           where doctor_id = %s order by weekday, start_time"""
DAYS_OFF = """select day from dentbook.days_off where doctor_id = %s and day >= %s
              order by day"""
ADD = "select dentbook.admin_add_doctor(%s)"
UPDATE = "select dentbook.admin_update_doctor(%s, %s, %s)"
SET_HOURS = "select dentbook.admin_set_hours(%s, %s, %s, %s)"
ADD_DAYS_OFF = "select dentbook.admin_add_days_off(%s, %s, %s)"
REMOVE_DAY_OFF = "select dentbook.admin_remove_day_off(%s, %s)"
OUTSIDE = """select id, doctor_id, doctor_name, starts_at, ends_at, status, patient_name, reason,
                    total
             from dentbook.visits_outside_hours(%s, %s)"""

DayHours = Annotated[str, msgspec.Meta(max_length=200, pattern=rules.NAME_PATTERN)]


@dataclass(frozen=True)
class DoctorRow:
    id: UUID
    name: str
    active: bool
    has_feed: bool


@dataclass(frozen=True)
class Outside:
    """A future visit the doctor's hours, days off or active flag no longer allow."""

    id: UUID
    doctor_id: UUID
    doctor_name: str
    starts_at: datetime
    ends_at: datetime
    status: str
    patient_name: str | None
    reason: str  # 'hours', 'day_off' or 'inactive'
    total: int


class NameForm(msgspec.Struct, frozen=True):
    doctor_name: Name


class DoctorForm(msgspec.Struct, frozen=True):
    doctor_name: Name
    active: Literal["on"] | None = None


class HoursForm(msgspec.Struct, frozen=True):
    """`hours_1` (Monday) … `hours_7` (Sunday); empty is a day not worked."""

    hours_1: DayHours = ""
    hours_2: DayHours = ""
    hours_3: DayHours = ""
    hours_4: DayHours = ""
    hours_5: DayHours = ""
    hours_6: DayHours = ""
    hours_7: DayHours = ""


class DaysOffForm(msgspec.Struct, frozen=True):
    day: Day
    until: Day | None = None


class DayForm(msgspec.Struct, frozen=True):
    day: Day


def week_hours(form: HoursForm) -> list[Hours]:
    """The week typed in the form, or Invalid naming each day in error."""
    ranges: list[Hours] = []
    errors: dict[str, str] = {}
    for weekday in WEEKDAYS:
        field = f"hours_{weekday}"
        try:
            ranges += day_hours(weekday, getattr(form, field))
        except ValueError as exc:
            errors[field] = str(exc)
    if errors:
        raise Invalid(errors)
    return ranges


def day_hours(weekday: int, text: str) -> list[Hours]:
    """'09:00-13:00, 14:00-18:00' -> ranges; ValueError with the message id otherwise."""
    found: list[Hours] = []
    for part in filter(None, (p.strip() for p in re.split(r"[,;]", text))):
        m = _RANGE.fullmatch(part)
        if not m:
            raise ValueError("invalid_hours")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if max(h1, h2) > 23 or max(m1, m2) > 59:
            raise ValueError("invalid_hours")
        start, end = time(h1, m1), time(h2, m2)
        if start >= end:
            raise ValueError("hours_order")
        found.append(Hours(weekday, start, end))
    found.sort(key=lambda r: r.start_time)
    if any(a.end_time > b.start_time for a, b in itertools.pairwise(found)):
        raise ValueError("hours_overlap")
    return found


def hours_text(ranges: list[Hours]) -> dict[str, str]:
    """The form's values for stored hours (`hours_1` … `hours_7`)."""
    return {f"hours_{d}": ", ".join(f"{r.start_time:%H:%M}-{r.end_time:%H:%M}"
                                    for r in ranges if r.weekday == d) for d in WEEKDAYS}


def days_off_span(form: DaysOffForm) -> tuple[date, date]:
    until = form.until or form.day
    if until < form.day or until > form.day + timedelta(days=366):
        raise Invalid({"until": "invalid_until"})
    return form.day, until


async def list_doctors(conn: Conn) -> list[DoctorRow]:
    return await rows(conn, DoctorRow, DOCTORS)


async def doctor(conn: Conn, doctor_id: UUID) -> DoctorRow | None:
    """One doctor of the transaction's clinic (row level security keeps others out)."""
    return await one(conn, DoctorRow, DOCTOR, (doctor_id,))


async def hours(conn: Conn, doctor_id: UUID) -> list[Hours]:
    return await rows(conn, Hours, HOURS, (doctor_id,))


async def days_off(conn: Conn, doctor_id: UUID, since: date) -> list[date]:
    rows = await (await conn.execute(DAYS_OFF, (doctor_id, since))).fetchall()
    return [r[0] for r in rows if isinstance(r[0], date)]


async def add(conn: Conn, form: NameForm) -> UUID:
    async with refused_as(conn, unique={"doctor_name": "doctor_exists"}):
        row = await (await conn.execute(ADD, (form.doctor_name,))).fetchone()
    assert row is not None and isinstance(row[0], UUID)
    return row[0]


async def update(conn: Conn, doctor_id: UUID, form: DoctorForm) -> None:
    async with refused_as(conn, unique={"doctor_name": "doctor_exists"}):
        await conn.execute(UPDATE, (doctor_id, form.doctor_name, form.active == "on"))


async def set_hours(conn: Conn, doctor_id: UUID, ranges: list[Hours]) -> None:
    async with refused_as(conn, checked={"hours": "hours_order"}):
        await conn.execute(SET_HOURS, (doctor_id, [r.weekday for r in ranges],
                                       [r.start_time for r in ranges],
                                       [r.end_time for r in ranges]))


async def add_days_off(conn: Conn, doctor_id: UUID, first: date, last: date) -> None:
    async with refused_as(conn, checked={"until": "invalid_until"}):
        await conn.execute(ADD_DAYS_OFF, (doctor_id, first, last))


async def remove_day_off(conn: Conn, doctor_id: UUID, day: date) -> None:
    async with refused_as(conn):
        await conn.execute(REMOVE_DAY_OFF, (doctor_id, day))


async def outside_hours(conn: Conn, doctor_id: UUID | None = None) -> list[Outside]:
    """Future active visits (of one doctor, or all) that the hours no longer cover, the
    first OUTSIDE_LIMIT of them, each carrying the total."""
    async with refused_as(conn):
        return await rows(conn, Outside, OUTSIDE, (doctor_id, OUTSIDE_LIMIT))
