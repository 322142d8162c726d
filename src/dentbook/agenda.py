"""The staff agenda: a clinic's appointments, read at the staff level, where row level
security is the only thing keeping other clinics out (these queries deliberately carry no
tenant filter). Lapsed and released holds are hidden unless asked for; long lists are
paged, never cut short silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from psycopg.rows import class_row

from dentbook.db import Conn
from dentbook.forms import Day, Id
from dentbook.tenancy import Doctor

PAGE_SIZE = 100

DOCTORS = "select id, name from dentbook.doctors order by name, id"
# What a patient or the front desk still has to act on; the rest only with ?show=all.
_SHOWN = """(b.status in ('confirmed', 'refunded')
             or (b.status = 'pending' and b.hold_expires_at > now()))"""
_FILTER = """
where b.starts_at >= %(from)s - dentbook.longest_visit() and b.starts_at < %(to)s
  and upper(b.during) > %(from)s
  and (%(doctor)s::uuid is null or b.doctor_id = %(doctor)s::uuid)
  and (%(all)s or """ + _SHOWN + ")"
_SELECT = """
select b.id, b.starts_at, upper(b.during) as ends_at,
       b.doctor_id, d.name as doctor_name, v.name_pl as visit_name_pl, v.name_en as visit_name_en,
       b.patient_name, b.patient_email, b.patient_phone,
       case when b.status = 'pending' and b.hold_expires_at <= now() then 'expired'
            else b.status end as status,
       b.payment_processing, b.paid_after_expiry
from dentbook.bookings b
join dentbook.doctors d on d.tenant_id = b.tenant_id and d.id = b.doctor_id
join dentbook.visit_types v on v.tenant_id = b.tenant_id and v.id = b.visit_type_id
"""
APPOINTMENTS = _SELECT + _FILTER + """
order by b.starts_at, d.name, b.id
limit %(limit)s offset %(offset)s
"""
APPOINTMENT = _SELECT + "where b.id = %(id)s"
COUNT = "select count(*) from dentbook.bookings b" + _FILTER


class Filters(msgspec.Struct, frozen=True):
    """The agenda's query: `?doctor=&day=&show=all&page=`."""

    doctor: Id | None = None
    day: Day | None = None
    show: Literal["", "all"] = ""
    page: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1

    @property
    def all(self) -> bool:
        return self.show == "all"


@dataclass(frozen=True)
class Appointment:
    id: UUID
    starts_at: datetime
    ends_at: datetime
    doctor_id: UUID
    doctor_name: str
    visit_name_pl: str
    visit_name_en: str
    patient_name: str
    patient_email: str
    patient_phone: str | None
    status: str
    payment_processing: bool
    paid_after_expiry: bool

    def visit_name(self, locale: str) -> str:
        return self.visit_name_pl if locale == "pl" else self.visit_name_en

    def local_day(self, zone: ZoneInfo) -> date:
        return self.starts_at.astimezone(zone).date()


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


async def list_doctors(conn: Conn) -> list[Doctor]:
    """Every doctor of the transaction's clinic (staff level), for the filter."""
    async with conn.cursor(row_factory=class_row(Doctor)) as cur:
        await cur.execute(DOCTORS)
        return await cur.fetchall()


async def appointments(conn: Conn, zone: ZoneInfo, filters: Filters,
                       now: datetime | None = None) -> Page:
    """One page of appointments not yet over (or all of one local day), in time order."""
    if filters.day is None:
        start, end = now or datetime.now(UTC), datetime.max.replace(tzinfo=UTC)
    else:
        start = datetime.combine(filters.day, time(0), tzinfo=zone)
        end = datetime.combine(filters.day + timedelta(days=1), time(0), tzinfo=zone)
    number = filters.page
    params = {"from": start, "to": end, "doctor": filters.doctor, "all": filters.all,
              "limit": PAGE_SIZE, "offset": (number - 1) * PAGE_SIZE}
    async with conn.cursor(row_factory=class_row(Appointment)) as cur:
        await cur.execute(APPOINTMENTS, params)
        rows = await cur.fetchall()
    row = await (await conn.execute(COUNT, params)).fetchone()
    return Page(rows, int(str(row[0])) if row else 0, number)


async def appointment(conn: Conn, booking_id: UUID) -> Appointment | None:
    """One appointment of the transaction's clinic (staff level), or None."""
    async with conn.cursor(row_factory=class_row(Appointment)) as cur:
        await cur.execute(APPOINTMENT, {"id": booking_id})
        return await cur.fetchone()
