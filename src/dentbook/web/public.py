"""Public pages: the clinic directory, a clinic's page (with the booking form when a slot is
chosen) and the grid fragment."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.response import Template

from dentbook import booking
from dentbook.availability import ClinicView, clinic_view
from dentbook.db import Conn
from dentbook.forms import Day, Instant, PathId, parse
from dentbook.settings import Settings
from dentbook.tenancy import Clinic, Clinics
from dentbook.web.render import page, request_locale
from dentbook.web.urls import Here, is_fragment


class Choice(msgspec.Struct, frozen=True):
    """What the clinic page is asked to show: `?doctor=&visit=&week=&start=`."""

    doctor: PathId | None = None
    visit: PathId | None = None
    week: Day | None = None
    start: Instant | None = None


@get("/", name="directory")
async def directory(request: Request[Any, Any, Any], clinics: NamedDependency[Clinics]) -> Template:
    return page(request, "pages/directory.html", request_locale(request),
                clinics=await clinics.directory())


@get("/", name="clinic")
async def clinic_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                      anon_tx: NamedDependency[Conn], locale: NamedDependency[str],
                      settings: NamedDependency[Settings]) -> Template:
    fragment = is_fragment(request)
    view = await load_view(request, anon_tx, clinic, settings, parse(Choice, request.query_params),
                           holds=not fragment)
    return render_clinic(request, clinic, locale, view, fragment=fragment)


@get("/slots", name="slots")
async def slots_fragment(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                         anon_tx: NamedDependency[Conn], locale: NamedDependency[str],
                         settings: NamedDependency[Settings]) -> Template:
    view = await load_view(request, anon_tx, clinic, settings, parse(Choice, request.query_params),
                           holds=False)
    return render_clinic(request, clinic, locale, view, fragment=True)


async def load_view(request: Request[Any, Any, Any], conn: Conn, clinic: Clinic,
                    settings: Settings, choice: Choice, holds: bool = True) -> ClinicView:
    holder = booking.holder_hash(request.cookies.get(booking.HOLDER_COOKIE)) if holds else None
    return await clinic_view(conn, clinic, settings, choice.doctor, choice.visit, choice.week,
                             choice.start, holder)


def render_clinic(request: Request[Any, Any, Any], clinic: Clinic, locale: str, view: ClinicView,
                  *, fragment: bool = False, status_code: int = 200, error: str | None = None,
                  fields: dict[str, str] | None = None,
                  form: dict[str, str] | None = None) -> Template:
    """The clinic page (or its grid alone); with a chosen start, the booking form for it.

    Also answers a failed booking: the same page, refreshed, with the patient's values and
    the errors next to their fields.
    """
    cal, here = view.calendar, None
    if cal.doctor and cal.visit:
        # The page's own address, also when it answers the booking form's POST.
        here = Here(request.app.state.urls, "clinic", {
            "slug": clinic.slug, "doctor": cal.doctor.id, "visit": cal.visit.id,
            "week": cal.week.monday.isoformat() if cal.week else None,
            "start": view.start.strftime("%Y-%m-%dT%H:%M:%SZ") if view.start else None})
    name = "fragments/grid.html" if fragment else "pages/clinic.html"
    response = page(request, name, locale, status_code=status_code, here=here, cal=cal,
                    clinic=clinic, chosen=view.chosen, asked=view.start is not None or bool(form),
                    error=error, fields=fields or {}, form=form or {}, own_holds=view.own_holds)
    if fragment and here is not None:
        # Changing doctor, visit or week through htmx keeps the address bar true.
        response.headers["HX-Push-Url"] = here.with_(start=None)
    return response
