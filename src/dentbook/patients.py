"""Patients' requests under the GDPR: find a person's visits by e-mail or phone, give them a
copy of their data (Art. 15 and 20), erase it (Art. 17).

The work is done by staff-level SQL functions an admin may call (`sql/service-privacy.sql`),
driven by the data map in the columns' comments: what is exported and what is erased follow
the classes there, never a list kept here. Each call writes an audit row with counts; what
was searched for is never logged. Row level security keeps every call inside the clinic of
the transaction: another clinic's patient is simply not found.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg

from dentbook.db import Conn, rows
from dentbook.errors import Invalid
from dentbook.forms import Email, Phone
from dentbook.i18n import translations
from dentbook.staff import Forbidden

FIND = "select * from dentbook.patient_find(%s, %s)"
EXPORT = "select dentbook.patient_export(%s, %s)"
ERASE = "select dentbook.patient_erase(%s, %s)"
FORBIDDEN = "DBK40"  # dentbook.require_role


class PatientQuery(msgspec.Struct, frozen=True):
    """Who the request is about: their e-mail address, their phone number, or both."""

    email: Email | None = None
    phone: Phone | None = None

    def __post_init__(self) -> None:
        if self.email is None and self.phone is None:
            raise Invalid({"email": "patient_query_required"})

    @property
    def params(self) -> tuple[str | None, str | None]:
        return self.email, self.phone


class EraseForm(msgspec.Struct, frozen=True):
    email: Email | None = None
    phone: Phone | None = None
    confirm: bool = False


@dataclass(frozen=True)
class PatientVisit:
    id: UUID
    reference: str | None
    starts_at: datetime
    ends_at: datetime
    doctor_name: str
    visit_name_pl: str
    visit_name_en: str
    status: str
    amount_minor: int
    currency: str
    paid: bool
    patient_name: str | None
    patient_email: str | None
    patient_phone: str | None
    source: str

    def visit_name(self, locale: str) -> str:
        return self.visit_name_pl if locale == "pl" else self.visit_name_en


@dataclass(frozen=True)
class Erasure:
    """What an erasure did: `outcome` is 'erased', 'refused' (with `reason`) or
    'nothing_found'. `kept` lists the paid deposits kept for the accounts."""

    outcome: str
    reason: str | None = None
    visits: int = 0
    cancelled: int = 0
    refunds: int = 0
    kept: list[dict[str, Any]] = field(default_factory=list)


@asynccontextmanager
async def _as_admin() -> AsyncIterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        if exc.sqlstate == FORBIDDEN:
            raise Forbidden() from None
        raise


async def find(conn: Conn, query: PatientQuery) -> list[PatientVisit]:
    """The person's visits, newest first (staff level, admin)."""
    async with _as_admin():
        return await rows(conn, PatientVisit, FIND, query.params)


async def export(conn: Conn, query: PatientQuery, locale: str) -> dict[str, Any] | None:
    """Everything about the person as one document, or None when nothing was found."""
    async with _as_admin():
        row = await (await conn.execute(EXPORT, query.params)).fetchone()
    data = row[0] if row else None
    if not isinstance(data, dict):
        return None
    personal = {table: sorted(col for col, cls in columns.items() if cls == "personal")
                for table, columns in data["data_map"].items()}
    return {
        "about": _("A copy of the personal data this clinic's booking service holds about the "
                   "person with the given e-mail address or phone number (GDPR Art. 15 and 20). "
                   "'data' holds every row about their visits; 'data_map' gives the class of "
                   "each field.", locale=locale),
        **data,
        "on_erasure": {
            "erased": {t: cols for t, cols in personal.items() if cols},
            "kept": kept_explanation(locale),
        },
    }


async def erase(conn: Conn, query: PatientQuery) -> Erasure:
    async with _as_admin():
        row = await (await conn.execute(ERASE, query.params)).fetchone()
    result = row[0] if row else None
    assert isinstance(result, dict)
    return Erasure(outcome=result["outcome"], reason=result.get("reason"),
                   visits=result.get("visits", 0), cancelled=result.get("cancelled", 0),
                   refunds=result.get("refunds", 0), kept=result.get("kept", []))


def kept_explanation(locale: str) -> list[dict[str, str]]:
    """What erasure keeps, and why: said on the page and in the export."""
    return [
        {"what": _("Paid deposits: amount, currency, date and the Stripe payment references.",
                   locale=locale),
         "why": _("Accounting records must be kept for 5 years (the Accounting Act, ustawa o "
                  "rachunkowości, art. 74 ust. 2). They no longer carry the patient's name or "
                  "contact details.", locale=locale)},
        {"what": _("The visits' dates, doctors, visit types and statuses, without a name or "
                   "contact details.", locale=locale),
         "why": _("They no longer relate to anyone; the clinic's calendar needs them to stay "
                  "correct.", locale=locale)},
        {"what": _("The audit log of changes to the visits.", locale=locale),
         "why": _("It never held the patient's name, e-mail address or phone number: it refers "
                  "to visits by their number.", locale=locale)},
    ]


def _(message: str, locale: str) -> str:
    return str(translations(locale).gettext(message))
