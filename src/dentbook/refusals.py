"""What the admin's SQL functions mean when they refuse: SQLSTATEs to domain errors.

The functions of `sql/staff-admin.sql` check the role (DBK40), see only the clinic of the
transaction (an id of another clinic: DBK04) and keep the clinic's rules (DBK41-DBK43);
the tables' own constraints refuse the rest. Each write runs in a savepoint, so a refusal
leaves the request's transaction usable for showing the form again with its errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import psycopg

from dentbook.db import Conn
from dentbook.errors import DomainError, Invalid, NotFound
from dentbook.staff import Forbidden


class LastAdmin(DomainError):
    """The change would leave the clinic without an active admin who can sign in."""

    code = "last_admin"


@asynccontextmanager
async def refused_as(conn: Conn, unique: Mapping[str, str] | None = None,
                     checked: Mapping[str, str] | None = None) -> AsyncIterator[Conn]:
    """A savepoint whose SQL refusals become domain errors: `unique` (field -> message id)
    names what a duplicate is, `checked` what a table check refusing the values is."""
    try:
        async with conn.transaction():
            yield conn
    except psycopg.Error as exc:
        raise _meaning(exc, unique, checked) from exc


def _meaning(exc: psycopg.Error, unique: Mapping[str, str] | None,
             checked: Mapping[str, str] | None) -> Exception:
    state = exc.sqlstate or ""
    if state == "DBK40":
        return Forbidden()
    if state == "DBK04":
        return NotFound("id")
    if state == "DBK41":
        return LastAdmin()
    if state == "DBK42":
        return Invalid({"hours": "hours_overlap"})
    if state == "DBK43":
        return Invalid({"email": "account_exists"})
    if state == "23505" and unique:
        return Invalid(dict(unique))
    if state in ("23514", "22023") and checked:
        return Invalid(dict(checked))
    return exc
