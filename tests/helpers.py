"""Test helpers: picking a free slot from the real page and booking it over HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from uuid import UUID

import httpx
import psycopg

SLOT = re.compile(r'data-slot data-doctor="([^"]+)" data-start="([^"]+)" data-state="free"')
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def free_starts(client: httpx.Client, slug: str, doctor: UUID, visit: UUID,
                week: str | None = None) -> list[str]:
    params = {"doctor": str(doctor), "visit": str(visit)}
    if week:
        params["week"] = week
    page = client.get(f"/{slug}", params=params)
    assert page.status_code == 200, page.text[:500]
    return [start for _, start in SLOT.findall(page.text)]


def next_week(client: httpx.Client, slug: str) -> str:
    """The week after this one (YYYY-MM-DD): its slots are safely past the notice."""
    page = client.get(f"/{slug}")
    m = re.search(r'week=(\d{4}-\d{2}-\d{2})[^"]*"[^>]*rel="next"', page.text)
    assert m, "no next-week link"
    return m.group(1)


def csrf_token(client: httpx.Client, slug: str, doctor: UUID, visit: UUID, start: str) -> str:
    """Open the booking form as a browser would, and take its CSRF token."""
    page = client.get(f"/{slug}", params={"doctor": str(doctor), "visit": str(visit), "start": start})
    m = CSRF.search(page.text)
    assert m, "booking form has no CSRF token"
    return m.group(1)


def form(doctor: UUID, visit: UUID, start: str, token: str, email: str = "pat@example.com",
         name: str = "Pat Patient", phone: str = "") -> dict[str, str]:
    return {"doctor_id": str(doctor), "visit_type_id": str(visit), "start": start, "name": name,
            "email": email, "phone": phone, "_csrf_token": token}


def session_of(location: str) -> str:
    """The Checkout Session id from the hosted page we were redirected to."""
    return location.rstrip("/").rsplit("/", 1)[-1]


def wait_for(check: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def booking_row(owner_url: str, tenant: UUID, session_id: str) -> dict | None:
    with psycopg.connect(owner_url) as conn:
        conn.execute("set role dentbook_owner")
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant),))
        cur = conn.execute("select * from dentbook.bookings where stripe_session_id = %s",
                           (session_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c.name for c in cur.description], row, strict=True))


def owner_sql(owner_url: str, tenant: UUID, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(owner_url) as conn:
        conn.execute("set role dentbook_owner")
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant),))
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []
