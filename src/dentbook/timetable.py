"""The agenda's day and week views as a timetable: rows of wall-clock time at the clinic's
step, columns of doctors (one day) or of days (one doctor's week).

Each cell says whether the doctor works then, lists what starts in it, and whether it is
covered by something that started earlier, so a visit of any length (or a block at an odd
minute) shows once, at its start, with its time span, and never collides with a neighbour.
Built from what `agenda.active_between` read and the doctors' hours (staff level, RLS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from dentbook.agenda import Appointment, Filters, active_between
from dentbook.db import Conn, rows
from dentbook.tenancy import Clinic, Doctor

HOURS = """select doctor_id, weekday, start_time, end_time from dentbook.working_hours
where doctor_id = any(%s) order by start_time"""
DAYS_OFF = "select doctor_id, day from dentbook.days_off where doctor_id = any(%s) and day between %s and %s"
# With no working hours anywhere in view, this much of the day is shown.
DEFAULT_SPAN = (time(8, 0), time(16, 0))


@dataclass(frozen=True)
class Hours:
    doctor_id: UUID
    weekday: int
    start_time: time
    end_time: time


@dataclass(frozen=True)
class Column:
    doctor: Doctor
    day: date
    # Working intervals that day (instants), none on a day off.
    open: tuple[tuple[datetime, datetime], ...]

    @property
    def key(self) -> str:
        return f"{self.doctor.id}-{self.day.isoformat()}"


@dataclass(frozen=True)
class Cell:
    column: Column
    start: datetime
    end: datetime
    items: list[Appointment] = field(default_factory=list)
    covered: bool = False  # by something that started in an earlier row
    open: bool = False  # inside the doctor's working hours

    def bookable(self, now: datetime) -> bool:
        """A working, empty, future cell: offered to the front desk as a start."""
        return self.open and not self.items and not self.covered and self.start > now


@dataclass(frozen=True)
class Row:
    at: time
    cells: list[Cell]


@dataclass(frozen=True)
class Timetable:
    view: str  # "day" or "week"
    first: date
    last: date
    columns: list[Column]
    rows: list[Row]
    # Active entries outside the rows shown (e.g. before opening): listed, never dropped.
    outside: list[Appointment]

    @property
    def names_patients(self) -> bool:
        return any(a.patient_name for row in self.rows for c in row.cells for a in c.items) \
            or any(a.patient_name for a in self.outside)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def load(conn: Conn, clinic: Clinic, doctors: list[Doctor], filters: Filters,
               today: date) -> Timetable:
    """The day view (every doctor, or the chosen one) or the week view (the chosen doctor,
    else the first) around `filters.on` (default today)."""
    on = filters.on or today
    if filters.kind == "week":
        chosen = [d for d in doctors if d.id == filters.doctor] or doctors[:1]
        first, last = monday(on), monday(on) + timedelta(days=6)
    else:
        chosen = [d for d in doctors if filters.doctor in (None, d.id)]
        first = last = on
    zone = clinic.zone
    ids = [d.id for d in chosen]
    hours = await rows(conn, Hours, HOURS, (ids,))
    off = {(r[0], r[1]) for r in await (await conn.execute(DAYS_OFF, (ids, first, last))).fetchall()}
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    items = await active_between(conn, start, end, filters.doctor if filters.kind == "day"
                                 else (chosen[0].id if chosen else None))
    if filters.kind == "day" and filters.doctor is None:
        # A doctor no longer active has a column only while something of theirs is on it.
        chosen = [d for d in chosen if d.active or any(a.doctor_id == d.id for a in items)]
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    columns = [_column(d, day, hours, off, zone) for day in days for d in chosen]
    if filters.kind == "week":
        # Weekends and other days without hours only when something is booked on them.
        busy = {a.local_day(zone) for a in items}
        columns = [c for c in columns if c.open or c.day in busy or c.day.weekday() < 5]
    return _build(filters.kind, first, last, columns, items, clinic)


def _column(doctor: Doctor, day: date, hours: list[Hours], off: set[tuple[object, object]],
            zone: ZoneInfo) -> Column:
    if (doctor.id, day) in off or not doctor.active:  # nothing to offer the front desk
        return Column(doctor, day, ())
    spans = tuple((datetime.combine(day, h.start_time, tzinfo=zone).astimezone(UTC),
                   datetime.combine(day, h.end_time, tzinfo=zone).astimezone(UTC))
                  for h in hours if h.doctor_id == doctor.id and h.weekday == day.isoweekday())
    return Column(doctor, day, spans)


def _build(view: str, first: date, last: date, columns: list[Column], items: list[Appointment],
           clinic: Clinic) -> Timetable:
    zone, step = clinic.zone, timedelta(minutes=clinic.slot_step_minutes)
    mine = {c.key: [a for a in items if a.doctor_id == c.doctor.id
                    and a.local_day(zone) == c.day] for c in columns}
    opens = [s.astimezone(zone).time() for c in columns for s, _ in c.open]
    closes = [e.astimezone(zone).time() for c in columns for _, e in c.open]
    opens += [a.starts_at.astimezone(zone).time() for v in mine.values() for a in v]
    closes += [min(a.ends_at, _midnight_after(a, zone)).astimezone(zone).time()
               for v in mine.values() for a in v]
    span_start = min(opens, default=DEFAULT_SPAN[0])
    span_end = max(closes, default=DEFAULT_SPAN[1])
    # Rows start on the step grid counted from midnight.
    minutes = span_start.hour * 60 + span_start.minute
    minutes -= minutes % clinic.slot_step_minutes
    rows: list[Row] = []
    placed: set[UUID] = set()
    at = minutes
    end_minutes = span_end.hour * 60 + span_end.minute + bool(span_end.second
                                                              or span_end.microsecond)
    while at < end_minutes and at < 24 * 60:
        wall = time(at // 60, at % 60)
        cells = []
        for c in columns:
            cell_start = datetime.combine(c.day, wall, tzinfo=zone).astimezone(UTC)
            cell_end = cell_start + step
            starting = [a for a in mine[c.key] if cell_start <= a.starts_at < cell_end]
            placed.update(a.id for a in starting)
            covered = any(a.starts_at < cell_start < a.ends_at for a in mine[c.key])
            working = any(s <= cell_start and cell_end <= e for s, e in c.open)
            cells.append(Cell(c, cell_start, cell_end, starting, covered, working))
        rows.append(Row(wall, cells))
        at += clinic.slot_step_minutes
    outside = [a for v in mine.values() for a in v if a.id not in placed]
    return Timetable(view, first, last, columns, rows, outside)


def _midnight_after(a: Appointment, zone: ZoneInfo) -> datetime:
    """Midnight ending the local day `a` starts on (an entry's row span stops there)."""
    day = a.starts_at.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=zone) - timedelta(microseconds=1)
