"""Bench databases (`dentbook_bench_*`), clinics made through `dentbook.admin`, slots computed
with the product's own rule, bookings written as the owner, and the SQL hold used as baseline."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg.conninfo import make_conninfo

from bench.common import Mode, Server, product_server
from dentbook import admin
from dentbook.availability import Hours, offered_starts
from dentbook.booking import HOLD, HOLD_MARGIN_SECONDS, holder_digest
from dentbook.migrate import migrate

ENTER = "select set_config('role', %s, true), set_config('app.tenant_id', %s, true)"
# The app's defaults (settings.py), with the hold limits lifted as on the bench server.
HOLD_MINUTES, MIN_NOTICE_MINUTES, MAX_WEEKS_AHEAD, NO_LIMIT = 30, 120, 26, 1_000_000
APP_POOL = 2 * 10  # `serve --workers 2`, DENTBOOK_POOL_MAX 10 each: the app's database concurrency


@dataclass(frozen=True)
class Db:
    server: str  # privileged URL of the maintenance database (create / drop)
    name: str
    owner: str  # privileged URL of the bench database
    app: str  # the runtime role, as the server logs in

    @classmethod
    def create(cls, server: str, label: str) -> Db:
        name = f"dentbook_bench_{label}_{os.getpid()}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')
        owner = make_conninfo(server, dbname=name)
        migrate(owner)
        return cls(server, name, owner, make_conninfo(owner, user="dentbook_app"))

    def server_app(self, logs: Path, secret: str, **extra: str) -> Server:
        """`dentbook serve --workers 2` on this database, migrated first: the working tree's
        sql/ may have changed since the database was created, and `serve` refuses a stale schema."""
        migrate(self.owner)
        return product_server(self.app, logs, secret, **extra)

    def drop(self) -> None:
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{self.name}" with (force)')


@dataclass
class Context:
    mode: Mode
    db: Db
    out: Path  # bench/results
    logs: Path  # server logs of this run
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    max_load: float = 1.0


@dataclass(frozen=True)
class Clinic:
    slug: str
    id: uuid.UUID
    doctors: list[uuid.UUID]
    visit: uuid.UUID
    hours: str
    minutes: int
    zone: ZoneInfo

    def page(self, doctor: uuid.UUID, week: date | None = None, start: str | None = None) -> str:
        path = f"/{self.slug}?doctor={doctor}&visit={self.visit}"
        if week:
            path += f"&week={week.isoformat()}"
        if start:
            path += f"&start={start}"
        return path

    def starts(self, doctor_weeks: range) -> list[datetime]:
        """Offered starts of one doctor in weeks `doctor_weeks` (0 = this week), UTC."""
        hours = [Hours(d, s, e) for d, s, e in admin.parse_hours(self.hours)]
        out: list[datetime] = []
        for w in doctor_weeks:
            monday = this_monday(self.zone) + timedelta(weeks=w)
            for i in range(7):
                out += offered_starts(monday + timedelta(days=i), hours, 30, self.minutes, self.zone)
        earliest = datetime.now(UTC) + timedelta(minutes=MIN_NOTICE_MINUTES + 60)
        return [s.astimezone(UTC) for s in out if s > earliest]


def this_monday(zone: ZoneInfo) -> date:
    today = datetime.now(zone).date()
    return today - timedelta(days=today.weekday())


def iso(instant: datetime) -> str:
    """A start as the page's `data-start` spells it."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_clinic(db: Db, slug: str, doctors: int = 1, hours: str = "mon-fri 08:00-18:00",
                minutes: int = 30, zone: str = "Europe/Warsaw") -> Clinic:
    tenant = admin.add_clinic(db.owner, slug, f"Bench {slug}", zone)
    ids = [admin.add_doctor(db.owner, slug, f"dr Bench {i}", hours) for i in range(doctors)]
    visit = admin.add_visit_type(db.owner, slug, "Przegląd", "Check-up", minutes, 5000)
    admin.add_visit_type(db.owner, slug, "Leczenie kanałowe", "Root canal", 90, 20000)
    admin.add_visit_type(db.owner, slug, "Higienizacja", "Hygiene", 60, 8000)
    return Clinic(slug, tenant, ids, visit, hours, minutes, ZoneInfo(zone))


INSERT_BOOKING = """
insert into dentbook.bookings (tenant_id, id, doctor_id, visit_type_id, during, status,
    hold_expires_at, patient_name, patient_email, amount_minor, currency)
values (%s, %s, %s, %s, tstzrange(%s, %s + %s * interval '1 minute', '[)'), %s,
    now() + interval '31 minutes', %s, %s, 5000, 'pln')
"""


def add_bookings(db: Db, clinic: Clinic, doctor: uuid.UUID, starts: list[datetime],
                 status: str = "confirmed") -> None:
    """Bookings written as the owner role with the clinic set (RLS applies)."""
    rows = [(clinic.id, uuid.uuid4(), doctor, clinic.visit, s, s, clinic.minutes, status,
             f"Patient {i}", f"patient{i}.{uuid.uuid4().hex[:8]}@example.com")
            for i, s in enumerate(starts)]
    with admin.as_owner(db.owner, clinic.id) as conn, conn.cursor() as cur:
        cur.executemany(INSERT_BOOKING, rows)


def count_active(db: Db, clinic: Clinic, doctor: uuid.UUID, start: datetime) -> int:
    with admin.as_owner(db.owner, clinic.id) as conn:
        row = conn.execute(
            "select count(*) from dentbook.bookings where doctor_id = %s and lower(during) = %s"
            " and status in ('pending', 'confirmed')", (doctor, start)).fetchone()
    return int(row[0]) if row else 0


# The SQL hold, as the app calls it (the baseline of the race and of throughput) ----------

def hold_params(clinic: Clinic, doctor: uuid.UUID, start: datetime, email: str) -> dict[str, object]:
    return {"doctor": doctor, "visit": clinic.visit, "start": start, "name": "Bench Patient",
            "email": email, "phone": "", "ip": "127.0.0.1", "locale": "pl",
            "holder": holder_digest(f"bench-{email}"),
            "hold": timedelta(minutes=HOLD_MINUTES, seconds=HOLD_MARGIN_SECONDS),
            "notice": timedelta(minutes=MIN_NOTICE_MINUTES),
            "window": timedelta(weeks=MAX_WEEKS_AHEAD + 1),
            "per_email": NO_LIMIT, "per_ip": NO_LIMIT}


async def sql_hold(conn: psycopg.AsyncConnection[tuple[object, ...]], tenant: uuid.UUID,
                   params: dict[str, object]) -> str:
    """One hold in its own transaction at the service trust level: 'held', 'taken' or a SQLSTATE."""
    try:
        async with conn.transaction():
            await conn.execute(ENTER, ("dentbook_service", str(tenant)))
            await (await conn.execute(HOLD, params)).fetchone()
    except psycopg.errors.ExclusionViolation:
        return "taken"
    except psycopg.Error as exc:
        return exc.sqlstate or "error"
    return "held"


async def sql_holds(db: Db, tenant: uuid.UUID, calls: list[dict[str, object]], connections: int,
                    time_limit: float) -> tuple[list[tuple[str, float, float]], float]:
    """Run every call over `connections` connections at once. Per call: (outcome, its own
    seconds, seconds from the common start to its answer, i.e. queueing included); and the
    elapsed time. Calls not started within `time_limit` are skipped."""
    conns = [await psycopg.AsyncConnection.connect(db.app) for _ in range(min(connections, len(calls)))]
    results: list[tuple[str, float, float]] = []
    todo = iter(calls)
    started = time.perf_counter()

    async def worker(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        for params in todo:
            if time.perf_counter() - started > time_limit:
                return
            t0 = time.perf_counter()
            outcome = await sql_hold(conn, tenant, params)
            t1 = time.perf_counter()
            results.append((outcome, t1 - t0, t1 - started))

    try:
        await asyncio.gather(*(worker(c) for c in conns))
        elapsed = time.perf_counter() - started
    finally:
        for c in conns:
            await c.close()
    return results, elapsed
