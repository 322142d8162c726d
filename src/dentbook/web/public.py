"""Public pages: the clinic directory, a clinic's calendar and its grid fragment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, get
from litestar.response import Template

from dentbook.availability import Calendar, load_calendar
from dentbook.db import Database, Level
from dentbook.settings import Settings
from dentbook.tenancy import enter_clinic, list_clinics
from dentbook.web.params import optional_uuid, optional_week
from dentbook.web.render import is_htmx, page, request_locale


@get("/", name="directory")
async def directory(request: Request[Any, Any, Any], db: Database) -> Template:
    async with db.transaction(Level.ANON) as conn:
        clinics = await list_clinics(conn)
    return page(request, "pages/directory.html", request_locale(request), clinics=clinics)


async def _calendar(request: Request[Any, Any, Any], db: Database, settings: Settings,
                    slug: str) -> Calendar:
    q = request.query_params
    doctor_id = optional_uuid(q.get("doctor"), "doctor")
    visit_id = optional_uuid(q.get("visit"), "visit")
    week = optional_week(q.get("week"))
    async with db.transaction(Level.ANON) as conn:
        clinic = await enter_clinic(conn, slug)
        return await load_calendar(
            conn, clinic, doctor_id, visit_id, week, datetime.now(UTC),
            timedelta(minutes=settings.min_notice_minutes), settings.max_weeks_ahead)


@get("/{slug:str}", name="clinic")
async def clinic_page(request: Request[Any, Any, Any], db: Database, settings: Settings,
                      slug: str) -> Template:
    cal = await _calendar(request, db, settings, slug)
    locale = request_locale(request, cal.clinic.default_locale)
    name = "fragments/grid.html" if is_htmx(request) else "pages/clinic.html"
    return page(request, name, locale, cal=cal, clinic=cal.clinic)


@get("/{slug:str}/slots", name="slots")
async def slots_fragment(request: Request[Any, Any, Any], db: Database, settings: Settings,
                         slug: str) -> Template:
    cal = await _calendar(request, db, settings, slug)
    locale = request_locale(request, cal.clinic.default_locale)
    return page(request, "fragments/grid.html", locale, cal=cal, clinic=cal.clinic)
