"""Public pages: the clinic directory, a clinic's page (with the booking form when a slot is
chosen) and the grid fragment."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.response import Template

from dentbook import booking
from dentbook.forms import Day, Instant, PathId, parse
from dentbook.live.grids import Grid
from dentbook.tenancy import Clinic, ClinicDb
from dentbook.web.render import page, request_locale
from dentbook.web.state import AppState
from dentbook.web.urls import Here, is_fragment


class Choice(msgspec.Struct, frozen=True):
    """What the clinic page is asked to show: `?doctor=&visit=&week=&start=`."""

    doctor: PathId | None = None
    visit: PathId | None = None
    week: Day | None = None
    start: Instant | None = None

    def week_of(self, clinic: Clinic) -> date | None:
        """The week asked for, or the chosen slot's."""
        if self.week is None and self.start is not None:
            return self.start.astimezone(clinic.zone).date()
        return self.week


@get("/", name="directory")
async def directory(request: Request[Any, Any, Any], state: AppState) -> Template:
    return page(request, "pages/directory.html", request_locale(request),
                clinics=await state.clinics.directory())


@get("/", name="clinic")
async def clinic_page(request: Request[Any, Any, Any], state: AppState,
                      clinic: NamedDependency[Clinic],
                      clinic_db: NamedDependency[ClinicDb],
                      locale: NamedDependency[str]) -> Template | Response[str]:
    fragment = is_fragment(request)
    choice = parse(Choice, request.query_params)
    grid = await state.grids.get(clinic, choice.doctor, choice.visit, choice.week_of(clinic), locale)
    own = [] if fragment else await own_holds(request, clinic_db)
    return render_clinic(request, clinic, locale, grid, choice.start, own, fragment=fragment)


@get("/slots", name="slots")
async def slots_fragment(request: Request[Any, Any, Any], state: AppState,
                         clinic: NamedDependency[Clinic],
                         locale: NamedDependency[str]) -> Template | Response[str]:
    choice = parse(Choice, request.query_params)
    grid = await state.grids.get(clinic, choice.doctor, choice.visit, choice.week_of(clinic), locale)
    return render_clinic(request, clinic, locale, grid, choice.start, [], fragment=True)


async def own_holds(request: Request[Any, Any, Any], clinic_db: ClinicDb) -> list[booking.OwnHold]:
    """This browser's unpaid holds (read only when it carries a holder cookie)."""
    holder = booking.holder_hash(request.cookies.get(booking.HOLDER_COOKIE))
    if holder is None:
        return []
    return await clinic_db.read(lambda conn: booking.own_holds(conn, holder))


def render_clinic(request: Request[Any, Any, Any], clinic: Clinic, locale: str, grid: Grid,
                  start: datetime | None, own: list[booking.OwnHold], *, fragment: bool = False,
                  status_code: int = 200, error: str | None = None,
                  fields: dict[str, str] | None = None,
                  form: dict[str, str] | None = None,
                  taken: bool = False) -> Template | Response[str]:
    """The clinic page (or its grid alone); with a chosen start, the booking form for it.

    The grid is the one shared rendering (`live.grids`): the fragment answers with it as it
    is (304 when the browser has it), and the page embeds it, unless a free slot is chosen
    (its cell is marked) and so the grid is rendered for this page alone. Also answers a
    failed booking: the same page, with the patient's values and the errors at their fields.
    `taken`: the database has just refused the chosen start as taken, which this process's
    grid may not show yet (the notification is on its way): it is treated as taken.
    """
    cal, here = grid.calendar, None
    chosen = None
    free = cal.week.free if cal.week is not None else ()
    if start is not None and cal.week is not None:
        chosen = next((s for d in cal.week.days for s in d.slots if s.start == start), None)
    if taken and chosen is not None:
        chosen = replace(chosen, state="taken")
        free = tuple(s for s in free if s.start != start)
    if cal.doctor and cal.visit:
        # The page's own address, also when it answers the booking form's POST.
        here = Here(request.app.state.urls, "clinic", {
            "slug": clinic.slug, "doctor": cal.doctor.id, "visit": cal.visit.id,
            "week": cal.week.monday.isoformat() if cal.week else None,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ") if start else None})
    shared = not (chosen and chosen.state == "free")
    headers = {"Vary": "Accept-Language, Cookie, HX-Request", "Content-Language": locale}
    if fragment and here is not None:
        # Changing doctor, visit or week through htmx keeps the address bar true.
        headers["HX-Push-Url"] = here.with_(start=None)
    if fragment and shared and status_code == 200:
        if grid.etag in request.headers.get("if-none-match", ""):
            return Response("", status_code=304, headers={**headers, "ETag": grid.etag})
        return Response(grid.html, media_type=MediaType.HTML,
                        headers={**headers, "ETag": grid.etag})
    name = "fragments/grid.html" if fragment else "pages/clinic.html"
    response = page(request, name, locale, status_code=status_code, here=here, cal=cal,
                    clinic=clinic, chosen=chosen, asked=start is not None or bool(form),
                    free=free, error=error, fields=fields or {}, form=form or {}, own_holds=own,
                    grid_html=grid.html if shared else None)
    response.headers.update(headers)
    return response
