"""The staff agenda: a clinic's appointments and blocked time, read at the staff level, where
row level security is the only thing keeping other clinics out (these queries deliberately
carry no tenant filter). The list view hides lapsed and released holds unless asked for and
is paged, never cut short silently; the day and week views (`dentbook.timetable`) show
everything that takes a doctor's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from dentbook.db import Conn, one, rows
from dentbook.forms import Day, Id
from dentbook.tenancy import Doctor

PAGE_SIZE = 100

DOCTORS = "select id, name, active from dentbook.doctors order by not active, name, id"
# What a patient or the front desk still has to act on; the rest only with ?show=all.
_SHOWN = """(b.status in ('confirmed', 'refunded')
             or (b.status = 'pending' and b.hold_expires_at > now()))"""
# What takes a doctor's time now: confirmed visits and blocks, holds not yet lapsed.
_ACTIVE = """(b.status = 'confirmed' or (b.status = 'pending' and b.hold_expires_at > now()))"""
_WINDOW = """
where b.starts_at >= %(from)s - dentbook.longest_visit() and b.starts_at < %(to)s
  and upper(b.during) > %(from)s
  and (%(doctor)s::uuid is null or b.doctor_id = %(doctor)s::uuid)
"""
_FILTER = _WINDOW + "  and (%(all)s or " + _SHOWN + ")"
# No-shows are counted per patient across all their visits, by e-mail or by phone.
_SELECT = """
select b.id, b.kind, b.starts_at, upper(b.during) as ends_at,
       b.doctor_id, d.name as doctor_name, v.name_pl as visit_name_pl, v.name_en as visit_name_en,
       b.patient_name, b.patient_email, b.patient_phone,
       case when b.status = 'pending' and b.hold_expires_at <= now() then 'expired'
            else b.status end as status,
       b.payment_processing, b.paid_after_expiry, b.attendance, b.source, b.reference, b.note,
       b.block_reason, b.cancel_reason, b.amount_minor, b.currency,
       b.stripe_payment_intent_id is not null as paid,
       (select count(*) from dentbook.bookings n
        where n.attendance = 'no_show' and b.kind = 'visit'
          and (n.email_key = b.email_key or n.phone_key = b.phone_key))::int as no_shows
from dentbook.bookings b
join dentbook.doctors d on d.tenant_id = b.tenant_id and d.id = b.doctor_id
left join dentbook.visit_types v on v.tenant_id = b.tenant_id and v.id = b.visit_type_id
"""
APPOINTMENTS = _SELECT + _FILTER + """
order by b.starts_at, d.name, b.id
limit %(limit)s offset %(offset)s
"""
ACTIVE = _SELECT + _WINDOW + "  and " + _ACTIVE + "\norder by b.starts_at, d.name, b.id"
APPOINTMENT = _SELECT + "where b.id = %(id)s"
COUNT = "select count(*) from dentbook.bookings b" + _FILTER
READ = "select dentbook.audit_read(%s, %s)"

View = Literal["", "list", "day", "week"]


class Filters(msgspec.Struct, frozen=True):
    """The agenda's query: `?view=day|week|list&date=&doctor=&show=all&page=`. `day` is the
    list's older name for `date`, still understood."""

    doctor: Id | None = None
    date: Day | None = None
    day: Day | None = None
    view: View = ""
    show: Literal["", "all"] = ""
    page: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1

    @property
    def all(self) -> bool:
        return self.show == "all"

    @property
    def on(self) -> Day | None:
        """The day asked for, if any."""
        return self.date or self.day

    @property
    def kind(self) -> str:
        """Which view: the list unless a day or week view was asked for."""
        return self.view or "list"

    def query(self, **changes: object) -> dict[str, object]:
        """These filters as query values for `url(...)` (one name per value), with changes."""
        on = self.on
        values: dict[str, object] = {
            "view": self.view or None, "date": on.isoformat() if on else None,
            "doctor": self.doctor, "show": self.show or None,
            "page": self.page if self.page > 1 else None}
        values.update(changes)
        return values

    def describe(self) -> str:
        """What a read of the agenda showed, for the audit log: ids and dates, no names."""
        on = self.on
        return " ".join(f"{k}={v}" for k, v in (
            ("view", self.kind), ("date", on.isoformat() if on else "upcoming"),
            ("doctor", self.doctor or "all"), ("show", self.show or "default"),
            ("page", self.page)))


@dataclass(frozen=True)
class Appointment:
    id: UUID
    kind: str
    starts_at: datetime
    ends_at: datetime
    doctor_id: UUID
    doctor_name: str
    visit_name_pl: str | None
    visit_name_en: str | None
    patient_name: str | None
    patient_email: str | None
    patient_phone: str | None
    status: str
    payment_processing: bool
    paid_after_expiry: bool
    attendance: str | None
    source: str
    reference: str | None
    note: str | None
    block_reason: str | None
    cancel_reason: str | None
    amount_minor: int
    currency: str
    paid: bool
    no_shows: int

    @property
    def is_block(self) -> bool:
        return self.kind == "block"

    def visit_name(self, locale: str) -> str:
        return (self.visit_name_pl if locale == "pl" else self.visit_name_en) or ""

    def local_day(self, zone: ZoneInfo) -> date:
        return self.starts_at.astimezone(zone).date()

    def open_at(self, now: datetime) -> bool:
        """Whether the front desk may still move or cancel it (a confirmed visit, not begun
        and not attended; cancelling also until it ends)."""
        return (not self.is_block and self.status == "confirmed" and self.attendance is None
                and self.ends_at > now)

    def attendance_due(self, now: datetime) -> bool:
        """Attendance may be marked from 30 minutes before the start."""
        return (not self.is_block and self.status == "confirmed"
                and self.starts_at <= now + timedelta(minutes=30))


@dataclass(frozen=True)
class Page:
    appointments: list[Appointment]
    total: int
    number: int

    @property
    def first(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.appointments else 0

    @property
    def last(self) -> int:
        return self.first + len(self.appointments) - 1 if self.appointments else 0

    @property
    def has_next(self) -> bool:
        return self.number * PAGE_SIZE < self.total

    @property
    def names_patients(self) -> bool:
        return any(a.patient_name for a in self.appointments)


async def list_doctors(conn: Conn) -> list[Doctor]:
    """Every doctor of the transaction's clinic (staff level), for the filter: the active
    ones first, then those no longer working here (their visits can still be looked up)."""
    return await rows(conn, Doctor, DOCTORS)


async def appointments(conn: Conn, zone: ZoneInfo, filters: Filters,
                       now: datetime | None = None) -> Page:
    """One page of appointments not yet over (or all of one local day), in time order."""
    if filters.on is None:
        start, end = now or datetime.now(UTC), datetime.max.replace(tzinfo=UTC)
    else:
        start = datetime.combine(filters.on, time(0), tzinfo=zone)
        end = datetime.combine(filters.on + timedelta(days=1), time(0), tzinfo=zone)
    number = filters.page
    params = {"from": start, "to": end, "doctor": filters.doctor, "all": filters.all,
              "limit": PAGE_SIZE, "offset": (number - 1) * PAGE_SIZE}
    found = await rows(conn, Appointment, APPOINTMENTS, params)
    row = await (await conn.execute(COUNT, params)).fetchone()
    return Page(found, int(str(row[0])) if row else 0, number)


async def active_between(conn: Conn, start: datetime, end: datetime,
                         doctor: UUID | None) -> list[Appointment]:
    """Everything taking a doctor's time in [start, end): confirmed visits, blocks and holds
    not yet lapsed (all of them: a bounded stretch of time, never paged)."""
    return await rows(conn, Appointment, ACTIVE, {"from": start, "to": end, "doctor": doctor})


async def appointment(conn: Conn, booking_id: UUID) -> Appointment | None:
    """One appointment of the transaction's clinic (staff level), or None."""
    return await one(conn, Appointment, APPOINTMENT, {"id": booking_id})


async def record_read(conn: Conn, what: str, booking: UUID | None = None) -> None:
    """Write a staff read of patients' data to the audit log (the transaction's account),
    linked to the visit read when it is one visit's page."""
    await conn.execute(READ, (what, booking))
