"""Visit types as the clinic's admin keeps them: names in Polish and English, length,
deposit and whether patients may book them.

A change applies to bookings made from then on. A booked visit carries its own time and
amount (`bookings.during`, `bookings.amount_minor`), so editing its type never moves it or
changes what was paid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from dentbook.db import Conn, one, rows
from dentbook.errors import Invalid
from dentbook.forms import Name
from dentbook.refusals import refused_as

MIN_DEPOSIT_MINOR, MAX_DEPOSIT_MINOR = 200, 10_000_000  # as sql/schema.sql checks
_AMOUNT = re.compile(r"(\d{1,6})(?:[.,](\d{1,2}))?")

VISIT_TYPES = """select id, name_pl, name_en, duration_minutes, deposit_minor, active
                 from dentbook.visit_types order by active desc, duration_minutes, name_en, id"""
VISIT_TYPE = """select id, name_pl, name_en, duration_minutes, deposit_minor, active
                from dentbook.visit_types where id = %s"""
ADD = "select dentbook.admin_add_visit_type(%s, %s, %s, %s)"
UPDATE = "select dentbook.admin_update_visit_type(%s, %s, %s, %s, %s, %s)"

Minutes = Annotated[int, msgspec.Meta(ge=5, le=480)]
Amount = Annotated[str, msgspec.Meta(max_length=20)]


@dataclass(frozen=True)
class VisitTypeRow:
    id: UUID
    name_pl: str
    name_en: str
    duration_minutes: int
    deposit_minor: int
    active: bool

    @property
    def deposit(self) -> str:
        """The deposit as the form shows it (major units, two decimals)."""
        return f"{self.deposit_minor // 100}.{self.deposit_minor % 100:02d}"


class VisitTypeForm(msgspec.Struct, frozen=True):
    """The deposit is typed in the currency's main unit ("50", "50.00" or "50,00")."""

    name_pl: Name
    name_en: Name
    duration_minutes: Minutes
    deposit: Amount
    active: Literal["on"] | None = None


def deposit_minor(text: str) -> int:
    """'50,5' -> 5050; Invalid unless between the smallest and largest deposit."""
    m = _AMOUNT.fullmatch(text.replace(" ", "").replace("\u00a0", ""))
    if not m:
        raise Invalid({"deposit": "invalid_deposit"})
    minor = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    if not MIN_DEPOSIT_MINOR <= minor <= MAX_DEPOSIT_MINOR:
        raise Invalid({"deposit": "invalid_deposit"})
    return minor


async def list_visit_types(conn: Conn) -> list[VisitTypeRow]:
    return await rows(conn, VisitTypeRow, VISIT_TYPES)


async def visit_type(conn: Conn, visit_type_id: UUID) -> VisitTypeRow | None:
    return await one(conn, VisitTypeRow, VISIT_TYPE, (visit_type_id,))


async def add(conn: Conn, form: VisitTypeForm) -> UUID:
    minor = deposit_minor(form.deposit)
    async with refused_as(conn, unique={"name_en": "visit_type_exists"}):
        row = await (await conn.execute(ADD, (form.name_pl, form.name_en, form.duration_minutes,
                                              minor))).fetchone()
    assert row is not None and isinstance(row[0], UUID)
    return row[0]


async def update(conn: Conn, visit_type_id: UUID, form: VisitTypeForm) -> None:
    minor = deposit_minor(form.deposit)
    async with refused_as(conn, unique={"name_en": "visit_type_exists"}):
        await conn.execute(UPDATE, (visit_type_id, form.name_pl, form.name_en,
                                    form.duration_minutes, minor, form.active == "on"))
