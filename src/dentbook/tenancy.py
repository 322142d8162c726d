"""Clinics (tenants): the public directory, and turning a URL slug into a clinic.

Anonymous requests never read tables; they call the public SQL functions, and the server
sets the clinic it resolved from the slug as the transaction's tenant. A clinic's details
change rarely, so each process keeps the ones it has resolved until a change to that
clinic is announced (`dentbook_clinics`, from a trigger), or its listener had a gap.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg.abc import Params

from dentbook import rules
from dentbook.db import Conn, Database, Level, one, rows
from dentbook.errors import NotFound

T = TypeVar("T")
CHANNEL = "dentbook_clinics"  # payload: the changed clinic's id ("" after a gap: all)


@dataclass(frozen=True)
class ClinicSummary:
    slug: str
    name: str


@dataclass(frozen=True)
class Clinic:
    id: UUID
    slug: str
    name: str
    time_zone: str
    default_locale: str
    currency: str
    slot_step_minutes: int
    address: str
    phone: str
    email: str
    cancel_window_hours: int
    late_refund_percent: int

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class Doctor:
    id: UUID
    name: str
    active: bool = True  # patients only ever see active doctors; the agenda sees all


@dataclass(frozen=True)
class VisitType:
    id: UUID
    name_pl: str
    name_en: str
    duration_minutes: int
    deposit_minor: int

    def name(self, locale: str) -> str:
        return self.name_pl if locale == "pl" else self.name_en


CLINICS = "select slug, name from dentbook.public_clinics()"
CLINIC = "select * from dentbook.public_clinic(%s)"
DOCTORS = "select id, name from dentbook.public_doctors()"
VISIT_TYPES = "select * from dentbook.public_visit_types()"


class Clinics:
    """This process's slug → Clinic map, bounded, forgotten on announced changes."""

    def __init__(self, db: Database, size: int = 2000) -> None:
        self.db, self.size = db, size
        self._known: OrderedDict[str, Clinic] = OrderedDict()

    async def get(self, slug: str) -> Clinic:
        """The clinic at `slug`, or NotFound (unknown slugs are never remembered)."""
        found = self._known.get(slug)
        if found is not None:
            self._known.move_to_end(slug)
            return found
        if not rules.valid_slug(slug):
            raise NotFound(slug)
        async with self.db.transaction(Level.ANON) as conn:
            found = await one(conn, Clinic, CLINIC, (slug,))
        if found is None:
            raise NotFound(slug)
        self._known[slug] = found
        if len(self._known) > self.size:
            self._known.popitem(last=False)
        return found

    def forget(self, tenant: UUID | None = None) -> None:
        """A clinic changed (or, with None, anything may have): read it again next time."""
        if tenant is None:
            self._known.clear()
        for slug in [s for s, c in self._known.items() if c.id == tenant]:
            del self._known[slug]

    async def directory(self) -> list[ClinicSummary]:
        async with self.db.transaction(Level.ANON) as conn:
            return await rows(conn, ClinicSummary, CLINICS)


@dataclass(frozen=True)
class ClinicDb:
    """One clinic's transactions, for work that needs several (e.g. around a Stripe call)."""

    db: Database
    clinic: Clinic

    @asynccontextmanager
    async def transaction(self, level: Level, staff: UUID | None = None) -> AsyncIterator[Conn]:
        async with self.db.transaction(level, self.clinic.id, staff) as conn:
            yield conn

    async def one_shot(self, level: Level, kind: type[T], query: str, params: Params) -> T | None:
        """One statement as a transaction of its own, in one round trip (`db.one_shot`)."""
        return await self.db.one_shot(level, self.clinic.id, kind, query, params)

    async def read(self, query: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `query` in its own transaction at the anonymous level."""
        async with self.transaction(Level.ANON) as conn:
            return await query(conn)


async def list_doctors(conn: Conn) -> list[Doctor]:
    return await rows(conn, Doctor, DOCTORS)


async def list_visit_types(conn: Conn) -> list[VisitType]:
    return await rows(conn, VisitType, VISIT_TYPES)
