"""Helpers for the privacy tests: admins signed in over HTTP, a paid booking through the local
Stripe, and a search of every text column of every table for a person's details."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg

from helpers import book_and_pay, owner_sql
from staff_helpers import add_staff, signed_in

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
# The data map's classes (sql/schema-7.sql).
CLASS = re.compile(r"^class: (personal|health-revealing|payment|operational)\b")

COLUMNS = """
select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.attgenerated <> '', d.description
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_description d on d.objoid = a.attrelid and d.classoid = 'pg_class'::regclass
                          and d.objsubid = a.attnum
where n.nspname = 'dentbook' and c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
order by c.relname, a.attnum
"""


def columns(pg: Any) -> list[tuple[str, str, str, bool, bool, str | None]]:
    """Every column of every table in schema dentbook, with its comment (the data map)."""
    with psycopg.connect(pg.owner) as conn:
        return conn.execute(COLUMNS).fetchall()  # type: ignore[return-value]


def data_map(pg: Any) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for table, column, _, _, _, comment in columns(pg):
        m = CLASS.match(comment or "")
        out.setdefault(table, {})[column] = m.group(1) if m else ""
    return out


def find_everywhere(pg: Any, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, value) of every value in the whole database (every clinic: the
    privileged user is not bound by row level security) whose text holds one of `needles`,
    whatever the column's type (text, jsonb, inet... as text)."""
    found = []
    with psycopg.connect(pg.owner) as conn:
        for table, column, _, _, _, _ in columns(pg):
            for needle in needles:
                rows = conn.execute(
                    f'select "{column}"::text from dentbook."{table}"'
                    f' where strpos(lower("{column}"::text), lower(%s)) > 0', (needle,)).fetchall()
                found += [(table, column, r[0]) for r in rows]
    return found


def make_admin(pg: Any, clinic: Any, email: str | None = None) -> str:
    email = add_staff(pg, clinic, email)
    owner_sql(pg.owner, clinic.id, "update dentbook.staff_accounts set role = 'admin'"
              " where email = %s returning 1", (email,))
    return email


@contextmanager
def admin_client(server: Any, pg: Any, clinic: Any) -> Iterator[httpx.Client]:
    """A client signed in as a new admin of `clinic`."""
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as c:
        signed_in(c, clinic.slug, make_admin(pg, clinic))
        yield c


def token_of(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    m = CSRF.search(page.text)
    assert m, f"no CSRF token on {path}: {page.status_code} {page.text[:300]}"
    return m.group(1)


def person() -> dict[str, str]:
    """A patient no other test uses: name, e-mail and phone with a random part."""
    tag = uuid.uuid4().hex[:8]
    digits = str(uuid.uuid4().int)[:8]
    return {"name": f"Zofia Prywatna-{tag}", "email": f"zofia.{tag}@example.com",
            "phone": f"+48 5{digits[:2]} {digits[2:5]} {digits[5:8]}", "digits": f"5{digits}"}


def paid_booking(client: httpx.Client, pg: Any, clinic: Any, stripe_local: Any,
                 who: dict[str, str], index: int = 0) -> dict[str, Any]:
    """A visit held over HTTP (with the patient's phone) and paid through the local Stripe:
    its booking row, confirmed."""
    row, _ = book_and_pay(client, pg, clinic, stripe_local, email=who["email"], name=who["name"],
                          index=index)
    owner_sql(pg.owner, clinic.id, "update dentbook.bookings set patient_phone = %s where id = %s"
              " returning 1", (who["phone"], row["id"]))
    return {**row, "patient_phone": who["phone"]}
