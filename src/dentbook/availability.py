"""Slots: which starts a doctor offers in a week, and which of them are free.

Working hours are wall-clock times in the clinic's zone. A range's opening time is
turned into an instant, and slots step forward from it in real elapsed time, so a
visit across a DST change lasts what it says. `sql/functions.sql: slot_is_offered`
applies the same rule when a hold is made; the tests check the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from dentbook.db import Conn, rows
from dentbook.errors import NotFound
from dentbook.tenancy import Clinic, Doctor, VisitType, list_doctors, list_visit_types


@dataclass(frozen=True)
class Hours:
    """One range of a doctor's weekly working hours (ISO weekday, clinic's wall clock)."""

    weekday: int
    start_time: time
    end_time: time


@dataclass(frozen=True)
class DayOff:
    day: date


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    state: str  # "free" or "taken"
    start_iso: str  # the start in UTC, as the HTML hooks and the form carry it


@dataclass(frozen=True)
class Day:
    day: date
    slots: tuple[Slot, ...]
    day_off: bool


@dataclass(frozen=True)
class Week:
    monday: date
    days: tuple[Day, ...]
    previous: date | None
    next: date | None
    # Pending holds in the week as (start, end, expires): each frees its time at `expires`.
    holds: tuple[tuple[datetime, datetime, datetime], ...] = ()

    @property
    def free(self) -> tuple[Slot, ...]:
        return tuple(s for d in self.days for s in d.slots if s.state == "free")


T = TypeVar("T", Doctor, VisitType)

HOURS = "select * from dentbook.public_working_hours(%s)"
DAYS_OFF = "select day from dentbook.public_days_off(%s, %s, %s)"
BUSY = "select lower(during), upper(during), hold_expires_at from dentbook.public_busy(%s, %s, %s)"


def local_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time, resolved the way PostgreSQL resolves it.

    In a spring-forward gap the offset before the change applies; in a fall-back
    overlap, the offset after it (PostgreSQL's documented rule for `AT TIME ZONE`).
    """
    early = datetime.combine(day, wall, tzinfo=zone)
    late = early.replace(fold=1)
    if early.utcoffset() == late.utcoffset():
        return early.astimezone(UTC)
    exists = early.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == early.replace(tzinfo=None)
    return (late if exists else early).astimezone(UTC)


def offered_starts(day: date, hours: list[Hours], step_minutes: int, duration_minutes: int,
                   zone: ZoneInfo) -> list[datetime]:
    """Every start on `day` whose whole visit fits one working-hours range."""
    step, length = timedelta(minutes=step_minutes), timedelta(minutes=duration_minutes)
    starts: set[datetime] = set()
    for h in hours:
        if h.weekday != day.isoweekday():
            continue
        opens, closes = local_instant(day, h.start_time, zone), local_instant(day, h.end_time, zone)
        t = opens
        while t + length <= closes:
            starts.add(t)
            t += step
    return sorted(starts)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def build_week(monday: date, clinic: Clinic, visit: VisitType, hours: list[Hours],
               days_off: set[date], busy: list[tuple[datetime, datetime]], now: datetime,
               min_notice: timedelta, first_monday: date, last_monday: date) -> Week:
    """The week's grid: offered starts, minus the past and the minimum notice."""
    earliest = now + min_notice
    length = timedelta(minutes=visit.duration_minutes)
    days = []
    for i in range(7):
        day = monday + timedelta(days=i)
        slots: list[Slot] = []
        if day not in days_off:
            for start in offered_starts(day, hours, clinic.slot_step_minutes,
                                        visit.duration_minutes, clinic.zone):
                if start < earliest:
                    continue
                end = start + length
                taken = any(b_start < end and start < b_end for b_start, b_end in busy)
                slots.append(Slot(start, end, "taken" if taken else "free",
                                  start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
        days.append(Day(day, tuple(slots), day in days_off))
    return Week(
        monday=monday,
        days=tuple(days),
        previous=monday - timedelta(days=7) if monday > first_monday else None,
        next=monday + timedelta(days=7) if monday < last_monday else None,
    )


async def load_week(conn: Conn, clinic: Clinic, doctor: Doctor, visit: VisitType,
                    week: date | None, now: datetime, min_notice: timedelta,
                    weeks_ahead: int) -> Week:
    """Read one doctor's week (in this transaction's clinic) and build its grid."""
    today = now.astimezone(clinic.zone).date()
    first = monday_of(today)
    last = first + timedelta(weeks=weeks_ahead)
    monday = min(max(monday_of(week or today), first), last)
    sunday = monday + timedelta(days=6)
    hours = await rows(conn, Hours, HOURS, (doctor.id,))
    days_off = {d.day for d in await rows(conn, DayOff, DAYS_OFF, (doctor.id, monday, sunday))}
    span_from = local_instant(monday, time(0), clinic.zone)
    span_to = local_instant(sunday + timedelta(days=1), time(0), clinic.zone)
    busy: list[tuple[datetime, datetime, datetime | None]] = await (  # type: ignore[assignment]
        await conn.execute(BUSY, (doctor.id, span_from, span_to))).fetchall()
    grid = build_week(monday, clinic, visit, hours, days_off, [(s, e) for s, e, _ in busy], now,
                      min_notice, first, last)
    return replace(grid, holds=tuple((s, e, x) for s, e, x in busy if x is not None))


@dataclass(frozen=True)
class Calendar:
    """What the clinic page shows: the choices, the chosen doctor and visit, the week."""

    clinic: Clinic
    doctors: list[Doctor]
    visits: list[VisitType]
    doctor: Doctor | None
    visit: VisitType | None
    week: Week | None


async def load_calendar(conn: Conn, clinic: Clinic, doctor_id: UUID | None,
                        visit_id: UUID | None, week: date | None, now: datetime,
                        min_notice: timedelta, weeks_ahead: int) -> Calendar:
    """The page's data for a clinic already entered in this transaction; NotFound for an
    unknown doctor or visit type (including another clinic's)."""
    doctors, visits = await list_doctors(conn), await list_visit_types(conn)
    doctor = _pick(doctors, doctor_id)
    visit = _pick(visits, visit_id)
    grid = None
    if doctor is not None and visit is not None:
        grid = await load_week(conn, clinic, doctor, visit, week, now, min_notice, weeks_ahead)
    return Calendar(clinic, doctors, visits, doctor, visit, grid)


def _pick(items: list[T], wanted: UUID | None) -> T | None:
    if wanted is None:
        return items[0] if items else None
    for item in items:
        if item.id == wanted:
            return item
    raise NotFound(str(wanted))
