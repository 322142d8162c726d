"""The audit log as staff read it (§9): every change of a visit or block and every read of
patients' data (and whatever else is written to it) — when, who, what, before and after,
which visit — newest first, by visit or by account, paged on the page and streamed whole
as CSV.

The log itself is append-only in SQL (a trigger refuses UPDATE, DELETE and TRUNCATE, even
for its owner) and names people by account id only; staff e-mails come from
`dentbook.audit_accounts()`, which checks the reader's role.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from dentbook.db import Conn, Level, rows
from dentbook.forms import Id
from dentbook.tenancy import ClinicDb

PAGE_SIZE = 100
CSV_BATCH = 500

ACCOUNTS = "select id, email from dentbook.audit_accounts()"
_SELECT = """
select a.id, a.at, a.actor, a.staff_id, s.email as staff_email, a.action, a.detail,
       a.from_status, a.to_status, a.before, a.after, a.booking_id, b.reference, b.kind
from dentbook.audit_log a
left join dentbook.audit_accounts() s on s.id = a.staff_id
left join dentbook.bookings b on b.tenant_id = a.tenant_id and b.id = a.booking_id
where (%(booking)s::uuid is null or a.booking_id = %(booking)s::uuid)
  and (%(staff)s::uuid is null or a.staff_id = %(staff)s::uuid)
"""
ENTRIES = _SELECT + "order by a.id desc limit %(limit)s offset %(offset)s"
BATCH = _SELECT + "  and (%(before)s::bigint is null or a.id < %(before)s::bigint)\n" \
    "order by a.id desc limit %(limit)s"
COUNT = """select count(*) from dentbook.audit_log a
where (%(booking)s::uuid is null or a.booking_id = %(booking)s::uuid)
  and (%(staff)s::uuid is null or a.staff_id = %(staff)s::uuid)"""

CSV_COLUMNS = ("id", "at", "actor", "account", "action", "detail", "visit", "reference",
               "from_status", "to_status", "before", "after")
# A cell a spreadsheet would run as a formula is quoted as text.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class AuditFilters(msgspec.Struct, frozen=True):
    """`?booking=&staff=&page=&format=csv`."""

    booking: Id | None = None
    staff: Id | None = None
    page: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1
    format: Literal["", "csv"] = ""


@dataclass(frozen=True)
class Account:
    id: UUID
    email: str


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    staff_id: UUID | None
    staff_email: str | None
    action: str
    detail: str | None
    from_status: str | None
    to_status: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    booking_id: UUID | None
    reference: str | None
    kind: str | None

    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for each field that changed (times as instants)."""
        if not self.after:
            return []
        old = self.before or {}
        out = []
        for name in ("status", "start", "end", "doctor", "attendance"):
            was, now = old.get(name), self.after.get(name)
            if was != now:
                out.append((name, _value(name, was), _value(name, now)))
        return out


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    total: int
    number: int

    @property
    def has_next(self) -> bool:
        return self.number * PAGE_SIZE < self.total


def _value(name: str, value: Any) -> Any:
    if value is not None and name in ("start", "end"):
        return datetime.fromisoformat(str(value))
    return value


async def accounts(conn: Conn) -> list[Account]:
    return await rows(conn, Account, ACCOUNTS)


async def entries(conn: Conn, filters: AuditFilters) -> Page:
    params = {"booking": filters.booking, "staff": filters.staff, "limit": PAGE_SIZE,
              "offset": (filters.page - 1) * PAGE_SIZE}
    found = await rows(conn, Entry, ENTRIES, params)
    row = await (await conn.execute(COUNT, params)).fetchone()
    return Page(found, int(str(row[0])) if row else 0, filters.page)


async def csv_lines(clinic_db: ClinicDb, staff: UUID, filters: AuditFilters) -> AsyncIterator[str]:
    """The whole (filtered) log as CSV, newest first, read in batches, each in its own short
    transaction (a long export never holds a connection between batches)."""
    yield _line(CSV_COLUMNS)
    before: int | None = None
    while True:
        params = {"booking": filters.booking, "staff": filters.staff, "before": before,
                  "limit": CSV_BATCH}
        async with clinic_db.transaction(Level.STAFF, staff) as conn:
            batch = await rows(conn, Entry, BATCH, params)
        for e in batch:
            yield _line((e.id, e.at.isoformat(), e.actor, e.staff_email or "", e.action,
                         e.detail or "", e.booking_id or "", e.reference or "",
                         e.from_status or "", e.to_status or "",
                         json.dumps(e.before, sort_keys=True) if e.before else "",
                         json.dumps(e.after, sort_keys=True) if e.after else ""))
        if len(batch) < CSV_BATCH:
            return
        before = batch[-1].id


def _line(values: tuple[object, ...]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(["'" + v if v.startswith(_FORMULA) else v
                              for v in (str(x) for x in values)])
    return out.getvalue()
