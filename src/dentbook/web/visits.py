"""The patient's own link (§8): the visit page, cancelling, rescheduling, the calendar file.

The token in the address is the only key; an unknown, tampered, expired or revoked one is
the same localized 404 ("contact the clinic"), never a hint of which visits exist. Every
form works without JavaScript and goes through the CSRF middleware.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from dentbook import visits
from dentbook.db import Conn
from dentbook.errors import DomainError, NotFound, SlotNotOffered, SlotTaken
from dentbook.forms import Day, parse
from dentbook.live.grids import Grids
from dentbook.mail import compose
from dentbook.mail.ical import visit_calendar
from dentbook.tenancy import Clinic, ClinicDb
from dentbook.web.forms import form_values
from dentbook.web.render import page
from dentbook.web.state import AppState

_REFUSED: dict[type[DomainError], tuple[int, str]] = {
    SlotTaken: (409, "slot_taken"),
    SlotNotOffered: (422, "slot_not_offered"),
    visits.NotMovable: (409, "not_movable"),
}
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class WeekQuery(msgspec.Struct, frozen=True):
    week: Day | None = None


@get("/visits/{token:str}", name="visit_page")
async def visit_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                     anon_tx: NamedDependency[Conn], locale: NamedDependency[str],
                     token: FromPath[str]) -> Template:
    visit = await visits.by_link(anon_tx, token)
    return _page(request, "pages/visit.html", locale, clinic=clinic, visit=visit, token=token,
                 done=request.query_params.get("done"))


@post("/visits/{token:str}/cancel", name="visit_cancel", status_code=303)
async def visit_cancel(request: Request[Any, Any, Any], clinic_db: NamedDependency[ClinicDb],
                       locale: NamedDependency[str], token: FromPath[str]) -> Redirect | Template:
    try:
        await visits.cancel(clinic_db, token)
    except visits.NotCancellable:
        visit = await clinic_db.read(lambda conn: visits.by_link(conn, token))
        return _page(request, "pages/visit.html", locale, status_code=409, clinic=clinic_db.clinic,
                     visit=visit, token=token, error="not_cancellable")
    return _back_to_visit(request, clinic_db.clinic, token, "cancelled")


@get("/visits/{token:str}/reschedule", name="visit_reschedule")
async def visit_reschedule(request: Request[Any, Any, Any], state: AppState,
                           clinic: NamedDependency[Clinic],
                           anon_tx: NamedDependency[Conn],
                           locale: NamedDependency[str], token: FromPath[str]) -> Template:
    visit = await visits.by_link(anon_tx, token)
    week = parse(WeekQuery, request.query_params).week
    return await _reschedule_page(request, state.grids, clinic, locale, visit, token, week)


@post("/visits/{token:str}/reschedule", name="visit_reschedule_submit", status_code=303)
async def visit_reschedule_submit(request: Request[Any, Any, Any], state: AppState,
                                  clinic_db: NamedDependency[ClinicDb],
                                  locale: NamedDependency[str],
                                  token: FromPath[str]) -> Redirect | Template:
    raw = await form_values(request)
    try:
        form = parse(visits.RescheduleForm, raw)
        await visits.reschedule(clinic_db, state.settings, token, form.start)
    except tuple(_REFUSED) as exc:
        status, code = _REFUSED[type(exc)]
        visit = await clinic_db.read(lambda conn: visits.by_link(conn, token))
        return await _reschedule_page(request, state.grids, clinic_db.clinic, locale, visit, token,
                                      None, status, code)
    return _back_to_visit(request, clinic_db.clinic, token, "moved")


@get("/visits/{token:str}/visit.ics", name="visit_ics")
async def visit_ics(request: Request[Any, Any, Any], state: AppState,
                    clinic: NamedDependency[Clinic],
                    anon_tx: NamedDependency[Conn],
                    token: FromPath[str]) -> Response[bytes]:
    visit = await visits.by_link(anon_tx, token)
    if visit.status != "confirmed":
        raise NotFound("visit")
    domain = state.settings.mail_from.rsplit("@", 1)[1]
    event = compose.VisitMail(
        booking_id=visit.id, reference=visit.reference or "", clinic_name=clinic.name,
        clinic_address=clinic.address, clinic_phone=clinic.phone, clinic_email=clinic.email,
        clinic_url=state.settings.base_url + request.app.state.urls("clinic", slug=clinic.slug),
        time_zone=clinic.time_zone, doctor_name=visit.doctor_name, starts_at=visit.starts_at,
        ends_at=visit.ends_at, deposit_minor=visit.amount_minor, refund_minor=0,
        currency=visit.currency, patient_name="", patient_email="", locale=visit.locale,
        visit_url=state.settings.base_url + request.app.state.urls("visit_page", slug=clinic.slug,
                                                              token=token),
        policy_window_hours=clinic.cancel_window_hours,
        late_refund_percent=clinic.late_refund_percent,
        calendar_uid=visits.calendar_uid(visit.id, domain), sequence=visit.sequence)
    body = visit_calendar(compose.visit_event(event), "PUBLISH")
    return Response(body, media_type="text/calendar; charset=utf-8", headers={
        **PRIVATE, "Content-Disposition": 'attachment; filename="visit.ics"'})


async def _reschedule_page(request: Request[Any, Any, Any], grids: Grids, clinic: Clinic,
                           locale: str, visit: visits.Visit, token: str, week: date | None,
                           status_code: int = 200, error: str | None = None) -> Template:
    grid = await grids.get(clinic, visit.doctor_id, visit.visit_type_id,
                           week or visit.starts_at.astimezone(clinic.zone).date(), locale)
    return _page(request, "pages/visit_reschedule.html", locale, status_code=status_code,
                 clinic=clinic, visit=visit, cal=grid.calendar, chosen=None, move_token=token,
                 token=token, error=error)


def _back_to_visit(request: Request[Any, Any, Any], clinic: Clinic, token: str,
                   done: str) -> Redirect:
    """303 to the visit's page, saying what was `done`."""
    return Redirect(request.app.state.urls("visit_page", slug=clinic.slug, token=token, done=done),
                    status_code=303, headers=PRIVATE)


def _page(request: Request[Any, Any, Any], name: str, locale: str, status_code: int = 200,
          **context: Any) -> Template:
    context = {"error": None, "done": None, **context}
    response = page(request, name, locale, status_code=status_code, **context)
    # The address holds the patient's key: never cached, never sent on as a referrer.
    response.headers.update(PRIVATE)
    return response
