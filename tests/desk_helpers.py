"""Test helpers for the front desk: a signed-in browser of each role, the forms' fields, and
the rows the database holds afterwards."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

import httpx

from helpers import free_starts, next_week, owner_sql
from staff_helpers import add_staff, login_token, signed_in

ROLES = ("viewer", "reception", "admin")
DONE = re.compile(r"/staff\?view=day&date=(\d{4}-\d{2}-\d{2})&done=(\w+)#booking-([0-9a-f-]{36})$")


@dataclass
class Desk:
    """A staff member's browser: signed in at `slug`, with a CSRF token for its forms."""

    http: httpx.Client
    slug: str
    token: str
    role: str
    email: str

    def post(self, path: str, data: dict[str, str] | None = None,
             token: str | None = None) -> httpx.Response:
        return self.http.post(f"/{self.slug}/staff{path}",
                              data={**(data or {}), "_csrf_token": token or self.token})

    def get(self, path: str = "", **params: object) -> httpx.Response:
        return self.http.get(f"/{self.slug}/staff{path}",
                             params={k: str(v) for k, v in params.items() if v is not None})

    def book(self, doctor: UUID, visit: UUID, start: str, name: str = "Jan Telefon",
             phone: str = "+48 600 700 800", email: str = "", note: str = "") -> httpx.Response:
        return self.post("/bookings", {"doctor_id": str(doctor), "visit_type_id": str(visit),
                                       "start": start, "name": name, "phone": phone,
                                       "email": email, "note": note})

    def block(self, doctor: UUID, start: str, end: str, reason: str = "Szkolenie") -> httpx.Response:
        return self.post("/blocks", {"doctor_id": str(doctor), "start": start, "end": end,
                                     "reason": reason})


@contextmanager
def desk(server, pg, clinic, role: str = "reception") -> Iterator[Desk]:
    email = add_staff(pg, clinic, role=role)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        signed_in(http, clinic.slug, email)
        yield Desk(http, clinic.slug, login_token(http, clinic.slug), role, email)


def done(response: httpx.Response) -> tuple[str, str, UUID]:
    """(day, what was done, booking id) from a front-desk success (303 to the agenda)."""
    assert response.status_code == 303, (response.status_code, response.text[-1500:])
    m = DONE.search(response.headers["location"])
    assert m, response.headers["location"]
    return m.group(1), m.group(2), UUID(m.group(3))


def slots(client: httpx.Client, clinic, doctor: int = 0, visit: str = "short") -> list[str]:
    """Next week's free starts of a doctor (ISO 8601 UTC), from the public page."""
    return free_starts(client, clinic.slug, clinic.doctors[doctor], clinic.visits[visit],
                       next_week(client, clinic.slug))


def row(pg, clinic, booking: UUID) -> dict:
    rows = owner_sql(pg.owner, clinic.id,
                     "select status, kind, source, amount_minor, patient_name, patient_email,"
                     " patient_phone, note, doctor_id, lower(during), upper(during), sequence,"
                     " attendance, cancel_reason, cancelled_by, block_reason, reference,"
                     " created_by, visit_type_id from dentbook.bookings where id = %s",
                     (booking,))
    assert rows, f"no booking {booking}"
    keys = ("status", "kind", "source", "amount_minor", "name", "email", "phone", "note",
            "doctor", "start", "end", "sequence", "attendance", "cancel_reason",
            "cancelled_by", "block_reason", "reference", "created_by", "visit_type")
    return dict(zip(keys, rows[0], strict=True))


def snapshot(pg, clinic) -> list[tuple]:
    """Everything a refused write must leave as it was: bookings, messages, jobs, refunds,
    and the audit log's changes (reads aside). Messages and jobs by kind only: the job
    runner moves their states on by itself."""
    return owner_sql(pg.owner, clinic.id, """
        select 'b', id::text, status || coalesce(attendance, '') || lower(during)::text
               || doctor_id::text || sequence from dentbook.bookings
        union all select 'm', id::text, kind from dentbook.messages
        union all select 'j', id::text, kind from dentbook.jobs
        union all select 'r', booking_id::text, amount_minor::text from dentbook.refunds
        union all select 'a', id::text, action from dentbook.audit_log where action <> 'read'
        order by 1, 2""")


def audit_rows(pg, clinic, booking: UUID) -> list[tuple]:
    return owner_sql(pg.owner, clinic.id,
                     "select action, actor, staff_id, detail, from_status, to_status, before,"
                     " after from dentbook.audit_log where booking_id = %s order by id",
                     (booking,))


def staff_id(pg, clinic, email: str) -> UUID:
    return owner_sql(pg.owner, clinic.id, "select id from dentbook.staff_accounts"
                     " where email = %s", (email,))[0][0]
