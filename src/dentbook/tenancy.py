"""Clinics (tenants): the public directory, and turning a URL slug into a clinic.

Anonymous requests never read tables; they call the public SQL functions, and the
server sets the clinic it resolved from the slug as the transaction's tenant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg.rows import class_row

from dentbook.db import Conn
from dentbook.errors import NotFound


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

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class Doctor:
    id: UUID
    name: str


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
SET_TENANT = "select set_config('app.tenant_id', %s, true)"
DOCTORS = "select id, name from dentbook.public_doctors()"
VISIT_TYPES = "select * from dentbook.public_visit_types()"

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,49}")


async def list_clinics(conn: Conn) -> list[ClinicSummary]:
    async with conn.cursor(row_factory=class_row(ClinicSummary)) as cur:
        await cur.execute(CLINICS)
        return await cur.fetchall()


async def enter_clinic(conn: Conn, slug: str) -> Clinic:
    """Resolve `slug` and make its clinic this transaction's tenant, or raise NotFound."""
    if not SLUG.fullmatch(slug):
        raise NotFound(slug)
    async with conn.cursor(row_factory=class_row(Clinic)) as cur:
        await cur.execute(CLINIC, (slug,))
        clinic = await cur.fetchone()
    if clinic is None:
        raise NotFound(slug)
    await conn.execute(SET_TENANT, (str(clinic.id),))
    return clinic


async def list_doctors(conn: Conn) -> list[Doctor]:
    async with conn.cursor(row_factory=class_row(Doctor)) as cur:
        await cur.execute(DOCTORS)
        return await cur.fetchall()


async def list_visit_types(conn: Conn) -> list[VisitType]:
    async with conn.cursor(row_factory=class_row(VisitType)) as cur:
        await cur.execute(VISIT_TYPES)
        return await cur.fetchall()
