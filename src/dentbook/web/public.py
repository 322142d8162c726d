"""Public pages: the clinic directory, a clinic's calendar (with the booking form when a
slot is chosen) and the grid fragment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from dentbook import booking
from dentbook.availability import Slot, load_calendar
from dentbook.db import Database, Level
from dentbook.settings import Settings
from dentbook.tenancy import enter_clinic, list_clinics
from dentbook.web.params import optional_uuid, optional_week
from dentbook.web.render import is_htmx, page, request_locale


@get("/", name="directory")
async def directory(request: Request[Any, Any, Any], db: NamedDependency[Database]) -> Template:
    async with db.transaction(Level.ANON) as conn:
        clinics = await list_clinics(conn)
    return page(request, "pages/directory.html", request_locale(request), clinics=clinics)


@get("/{slug:str}", name="clinic")
async def clinic_page(request: Request[Any, Any, Any], db: NamedDependency[Database],
                      settings: NamedDependency[Settings], slug: FromPath[str]) -> Template:
    return await render_clinic(request, db, settings, slug, start=request.query_params.get("start"),
                               fragment=is_htmx(request), **_choice(request))


@get("/{slug:str}/slots", name="slots")
async def slots_fragment(request: Request[Any, Any, Any], db: NamedDependency[Database],
                         settings: NamedDependency[Settings], slug: FromPath[str]) -> Template:
    return await render_clinic(request, db, settings, slug, fragment=True, **_choice(request))


def _choice(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Doctor, visit type and week asked for in the query (404/400 when malformed)."""
    q = request.query_params
    return {"doctor": optional_uuid(q.get("doctor"), "doctor"),
            "visit": optional_uuid(q.get("visit"), "visit"), "week": optional_week(q.get("week"))}


async def render_clinic(request: Request[Any, Any, Any], db: Database, settings: Settings,
                        slug: str, *, doctor: UUID | None = None, visit: UUID | None = None,
                        week: date | None = None, start: str | None = None,
                        fragment: bool = False, status_code: int = 200,
                        error: str | None = None, fields: dict[str, str] | None = None,
                        form: dict[str, str] | None = None) -> Template:
    """The clinic page (or its grid alone); with `start`, the booking form for that slot.

    Also answers a failed booking: the same page, refreshed, with the errors on it.
    """
    chosen_start = _instant(start)
    async with db.transaction(Level.ANON) as conn:
        clinic = await enter_clinic(conn, slug)
        if week is None and chosen_start is not None:
            week = chosen_start.astimezone(clinic.zone).date()
        cal = await load_calendar(conn, clinic, doctor, visit, week, datetime.now(UTC),
                                  timedelta(minutes=settings.min_notice_minutes),
                                  settings.max_weeks_ahead)
        own = [] if fragment else await booking.own_holds(
            conn, booking.holder_hash(request.cookies.get(booking.HOLDER_COOKIE)))
    locale = request_locale(request, clinic.default_locale)
    chosen: Slot | None = None
    if chosen_start is not None and cal.week is not None:
        chosen = next((s for d in cal.week.days for s in d.slots if s.start == chosen_start), None)
    name = "fragments/grid.html" if fragment else "pages/clinic.html"
    extra: dict[str, Any] = {}
    if form is not None and cal.doctor and cal.visit:
        # The answer to a POST: links on it (language, weeks) must lead to the page.
        extra = {"path": f"/{clinic.slug}", "params": {
            "doctor": str(cal.doctor.id), "visit": str(cal.visit.id), "start": start or ""}}
    return page(request, name, locale, status_code=status_code, cal=cal, clinic=clinic,
                start=start, chosen=chosen, error=error, fields=fields or {}, form=form or {},
                own_holds=own, **extra)


def _instant(value: str | None) -> datetime | None:
    if not value or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or not 2000 <= parsed.year <= 2200:
        return None
    return parsed.astimezone(UTC)
