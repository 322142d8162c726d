"""A clinic's own settings as its admin keeps them: the cancellation policy with the
reminder offsets, and the clinic's details (name, address, phone, e-mail, time zone,
default language).

Every server process keeps the clinics it has resolved (`dentbook.tenancy.Clinics`) and
the grids it has rendered; the tenants trigger announces a change so each forgets them.
These writes commit in a transaction of their own, so the caller can make this process
forget at once, and the very next page shows the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import available_timezones

import msgspec

from dentbook import rules
from dentbook.db import Conn, Level, one
from dentbook.errors import Invalid
from dentbook.forms import Email, Name, Phone
from dentbook.refusals import refused_as
from dentbook.tenancy import ClinicDb

MAX_REMINDERS = 5  # as sql/schema-4.sql checks

SETTINGS = """select name, address, phone, email, time_zone, default_locale,
                     cancel_window_hours, late_refund_percent, reminder_hours,
                     retention_years, unpaid_erasure_days
              from dentbook.tenants"""
SET_POLICY = "select dentbook.admin_set_policy(%s, %s, %s)"
SET_RETENTION = "select dentbook.admin_set_retention(%s, %s)"
SET_CLINIC = "select dentbook.admin_set_clinic(%s, %s, %s, %s, %s, %s)"

Address = Annotated[str, msgspec.Meta(max_length=300, pattern=rules.NAME_PATTERN)]
ZoneName = Annotated[str, msgspec.Meta(max_length=64)]


@dataclass(frozen=True)
class ClinicSettings:
    name: str
    address: str
    phone: str
    email: str
    time_zone: str
    default_locale: str
    cancel_window_hours: int
    late_refund_percent: int
    reminder_hours: list[int]
    retention_years: int
    unpaid_erasure_days: int

    @property
    def reminders(self) -> str:
        return ", ".join(str(h) for h in self.reminder_hours)


class PolicyForm(msgspec.Struct, frozen=True):
    cancel_window_hours: Annotated[int, msgspec.Meta(ge=0, le=720)]
    late_refund_percent: Annotated[int, msgspec.Meta(ge=0, le=100)]
    reminder_hours: Annotated[str, msgspec.Meta(max_length=100)] = ""


class RetentionForm(msgspec.Struct, frozen=True):
    retention_years: Annotated[int, msgspec.Meta(ge=1, le=30)]
    unpaid_erasure_days: Annotated[int, msgspec.Meta(ge=1, le=90)]


class ClinicForm(msgspec.Struct, frozen=True):
    clinic_name: Name
    time_zone: ZoneName
    default_locale: Literal["pl", "en"]
    address: Address = ""
    phone: Phone = ""
    email: Email = ""


@cache
def time_zones() -> list[str]:
    """The zone names a clinic may choose (the IANA database's regions, no aliases like
    "posixrules")."""
    return sorted(z for z in available_timezones() if "/" in z or z == "UTC")


def reminder_offsets(text: str) -> list[int]:
    """'48, 2' -> [48, 2]: up to five distinct whole hours, 1 to 720; empty: none."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if len(parts) > MAX_REMINDERS or not all(p.isdigit() and len(p) <= 3 for p in parts):
        raise Invalid({"reminder_hours": "invalid_reminder_hours"})
    hours = sorted({int(p) for p in parts}, reverse=True)
    if len(hours) != len(parts) or not all(1 <= h <= 720 for h in hours):
        raise Invalid({"reminder_hours": "invalid_reminder_hours"})
    return hours


def check_zone(form: ClinicForm) -> None:
    if form.time_zone not in time_zones():
        raise Invalid({"time_zone": "invalid_time_zone"})


async def read(conn: Conn) -> ClinicSettings:
    """The clinic's settings as stored now (the process's cached clinic may be older)."""
    found = await one(conn, ClinicSettings, SETTINGS)
    assert found is not None
    return found


async def set_policy(clinic_db: ClinicDb, staff: UUID, form: PolicyForm) -> None:
    """Store the policy (committed when this returns)."""
    reminders = reminder_offsets(form.reminder_hours)
    async with clinic_db.transaction(Level.STAFF, staff) as conn, \
            refused_as(conn, checked={"reminder_hours": "invalid_reminder_hours"}):
        await conn.execute(SET_POLICY, (form.cancel_window_hours, form.late_refund_percent,
                                        reminders))


async def set_retention(conn: Conn, form: RetentionForm) -> None:
    """Store how long patients' data is kept (in the request's staff transaction)."""
    async with refused_as(conn, checked={"retention_years": "invalid_retention"}):
        await conn.execute(SET_RETENTION, (form.retention_years, form.unpaid_erasure_days))


async def set_details(clinic_db: ClinicDb, staff: UUID, form: ClinicForm) -> None:
    """Store the details (committed when this returns)."""
    check_zone(form)
    async with clinic_db.transaction(Level.STAFF, staff) as conn, \
            refused_as(conn, checked={"time_zone": "invalid_time_zone"}):
        await conn.execute(SET_CLINIC, (form.clinic_name, form.address, form.phone, form.email.lower(),
                                        form.time_zone, form.default_locale))
