"""`dentbook migrate`: apply `sql/` in one transaction, idempotently, recording each step.

Versioned steps run once; repeatable steps (roles, policies, functions) run again when
their text changes, and after any versioned step. A database that recorded a versioned
step this code does not know is newer than us: we refuse to touch it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import psycopg

from dentbook.resources import SQL_DIR

log = logging.getLogger(__name__)


class MigrationError(RuntimeError):
    """The database cannot be migrated (or served) by this version of dentbook."""


@dataclass(frozen=True)
class Step:
    name: str
    repeatable: bool
    as_owner: bool = True

    @property
    def text(self) -> str:
        return (SQL_DIR / self.name).read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


# Order matters. New schema changes go in new versioned files after the last schema-N.sql;
# functions live in one repeatable file per trust level (anon, staff, service, worker).
STEPS = (
    Step("roles.sql", repeatable=True, as_owner=False),
    Step("schema.sql", repeatable=False),
    Step("schema-2.sql", repeatable=False),
    Step("schema-3.sql", repeatable=False),
    Step("schema-4.sql", repeatable=False),
    Step("schema-5.sql", repeatable=False),
    Step("schema-7.sql", repeatable=False),
    Step("schema-8.sql", repeatable=False),
    Step("rls.sql", repeatable=True),
    Step("anon.sql", repeatable=True),
    Step("staff.sql", repeatable=True),
    Step("service-booking.sql", repeatable=True),
    Step("service-visits.sql", repeatable=True),
    Step("service-payments.sql", repeatable=True),
    Step("staff-desk.sql", repeatable=True),
    Step("staff-admin.sql", repeatable=True),
    Step("service-signin.sql", repeatable=True),
    Step("service-privacy.sql", repeatable=True),
    Step("worker.sql", repeatable=True),
    Step("triggers.sql", repeatable=True),
)
# Repeatable steps of earlier versions, since split up: their records are dropped.
RETIRED = frozenset({"functions.sql"})

_LOCK_KEY = 0x64656E74  # "dent": one migrator at a time per database

_BOOTSTRAP = """
create schema if not exists dentbook_meta;
create table if not exists dentbook_meta.migrations (
    name text primary key,
    checksum text not null,
    applied_at timestamptz not null default now()
);
grant usage on schema dentbook_meta to dentbook_app;
grant select on dentbook_meta.migrations to dentbook_app;
"""

_APPLIED = "select name, checksum from dentbook_meta.migrations"
_RECORD = """
insert into dentbook_meta.migrations (name, checksum) values (%s, %s)
on conflict (name) do update set checksum = excluded.checksum, applied_at = now()
"""


def migrate(url: str) -> list[str]:
    """Bring the database at `url` (a privileged role) up to date; return the steps run."""
    ran: list[str] = []
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        applied = _applied(conn)
        _refuse_newer(applied)
        if RETIRED & set(applied):
            conn.execute("delete from dentbook_meta.migrations where name = any(%s)", (list(RETIRED),))
        versioned_ran = False
        for step in STEPS:
            due = applied.get(step.name) != step.checksum
            if not step.repeatable:
                due = step.name not in applied
            elif versioned_ran:
                due = True
            if not due:
                continue
            if step.as_owner:
                conn.execute("set local role dentbook_owner")
            conn.execute(step.text.encode())
            conn.execute("reset role")
            if step.name == "roles.sql":
                conn.execute("set local role dentbook_owner")
                conn.execute(_BOOTSTRAP.encode())
                conn.execute("reset role")
            conn.execute(_RECORD, (step.name, step.checksum))
            versioned_ran = versioned_ran or not step.repeatable
            ran.append(step.name)
            log.info("migration applied", extra={"step": step.name})
    return ran


def check_current(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Raise MigrationError unless the database has exactly the steps this code knows."""
    try:
        applied = _applied(conn)
    except psycopg.Error as exc:
        raise MigrationError("the database has no dentbook schema: run `dentbook migrate`") from exc
    _refuse_newer(applied)
    stale = [s.name for s in STEPS if applied.get(s.name) != s.checksum]
    if stale:
        raise MigrationError(
            f"the database schema is behind this dentbook ({', '.join(stale)}): "
            "run `dentbook migrate`"
        )


def _applied(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
    exists = conn.execute("select to_regclass('dentbook_meta.migrations') is not null").fetchone()
    if not exists or not exists[0]:
        return {}
    return {str(name): str(checksum) for name, checksum in conn.execute(_APPLIED)}


def _refuse_newer(applied: dict[str, str]) -> None:
    known = {s.name for s in STEPS} | RETIRED
    unknown = sorted(set(applied) - known)
    if unknown:
        raise MigrationError(
            f"the database was migrated by a newer dentbook (it has {', '.join(unknown)}); "
            "upgrade dentbook before running it against this database"
        )
