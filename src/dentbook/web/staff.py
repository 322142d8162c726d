"""Staff pages over HTTP: sign-in, sign-out and the agenda (§5, §9).

The session lives in our own HttpOnly cookie holding a random id, scoped to the clinic's
staff pages; the database keeps only its hash (see `dentbook.staff`). An account with a
second factor gets a short-lived challenge cookie instead and goes on to the code step
(`web/account.py`). Litestar's CSRF middleware guards the POSTs; the guards in
`web/guards.py` guard the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from dentbook import agenda, staff, timetable
from dentbook.db import Conn
from dentbook.doctors import outside_hours
from dentbook.errors import Invalid
from dentbook.forms import parse
from dentbook.staff import Role, StaffUser
from dentbook.tenancy import Clinic, ClinicDb
from dentbook.web import csrf
from dentbook.web.clients import client_address
from dentbook.web.cookies import staff_cookie
from dentbook.web.forms import form_values
from dentbook.web.guards import viewer
from dentbook.web.render import PRIVATE, page
from dentbook.web.state import AppState


@get("/login", name="staff_login")
async def login_page(request: Request[Any, Any, Any], state: AppState,
                     clinic_db: NamedDependency[ClinicDb],
                     locale: NamedDependency[str]) -> Template | Redirect:
    user = await staff.current_staff(clinic_db, state.settings, request.cookies.get(staff.COOKIE))
    if user is not None:
        return _to(request, "staff_dashboard", clinic_db.clinic)
    return _login(request, clinic_db.clinic, locale)


@post("/login", name="staff_login_submit", status_code=303, opt=csrf.EXEMPT)
async def login(request: Request[Any, Any, Any], state: AppState,
                clinic_db: NamedDependency[ClinicDb],
                locale: NamedDependency[str]) -> Template | Redirect:
    raw = await form_values(request)
    clinic = clinic_db.clinic
    token_ok, fresh_cookie = csrf.check(request, raw)
    if not token_ok:
        expired = _login(request, clinic, locale, 403, "form_expired", form=raw)
        if fresh_cookie is not None:
            expired.cookies.append(fresh_cookie)
        return expired
    try:
        form = parse(staff.LoginForm, raw)
        signed_in = await staff.sign_in(clinic_db, state.settings, form, client_address(request),
                                        request.cookies.get(staff.COOKIE))
    except Invalid as exc:
        return _login(request, clinic, locale, 422, "invalid", exc.fields, raw)
    except staff.LoginFailed:
        return _login(request, clinic, locale, 403, "login_failed", form=raw)
    except staff.LoginThrottled as exc:
        refused = _login(request, clinic, locale, 429, "login_throttled", form=raw)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    if signed_in.second_factor:
        step = _to(request, "staff_login_code", clinic)
        step.cookies.append(staff_cookie(request, clinic, staff.CHALLENGE_COOKIE, signed_in.token,
                                         max_age=staff.CHALLENGE_MINUTES * 60))
        return step
    signed = _to(request, "staff_dashboard", clinic)
    signed.cookies.append(staff_cookie(request, clinic, staff.COOKIE, signed_in.token))
    return signed


@post("/logout", name="staff_logout", status_code=303)
async def logout(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                 service_tx: NamedDependency[Conn]) -> Redirect:
    await staff.sign_out(service_tx, request.cookies.get(staff.COOKIE))
    response = _to(request, "staff_login", clinic)
    response.cookies.append(staff_cookie(request, clinic, staff.COOKIE, "", max_age=0))
    return response


class Flash(msgspec.Struct, frozen=True):
    """What the front desk just did, said on the agenda it returns to (`?done=`)."""

    done: Literal["booked", "blocked", "unblocked", "moved", "cancelled", "attendance"] | None = None


@get("/", name="staff_dashboard", guards=[viewer])
async def dashboard(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                    staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                    locale: NamedDependency[str]) -> Template:
    """The agenda: a list of what is coming (paged), a day of every doctor, or one doctor's
    week. Showing patients' names is a read the audit log records."""
    filters = parse(agenda.Filters, request.query_params)
    try:
        flash = parse(Flash, request.query_params)
    except Invalid:
        flash = Flash()
    doctors = await agenda.list_doctors(staff_tx)
    if filters.doctor is not None and all(d.id != filters.doctor for d in doctors):
        raise Invalid({"doctor": "invalid_doctor"})
    now = datetime.now(UTC)
    rows, table = None, None
    if filters.kind == "list":
        rows = await agenda.appointments(staff_tx, clinic.zone, filters)
        names = rows.names_patients
    else:
        table = await timetable.load(staff_tx, clinic, doctors, filters,
                                     now.astimezone(clinic.zone).date())
        names = table.names_patients
    # What a change of hours, days off or a doctor's active flag left outside: the front
    # desk is who moves those visits.
    may_write = staff_user.may(Role.RECEPTION)
    outside = await outside_hours(staff_tx) if may_write else []
    if names or outside:
        await agenda.record_read(staff_tx, f"agenda {filters.describe()}")
    today = now.astimezone(clinic.zone).date()
    step = timedelta(days=7 if filters.kind == "week" else 1)
    response = page(request, "pages/staff_dashboard.html", locale, clinic=clinic, staff=staff_user,
                    doctors=doctors, filters=filters, page_=rows, table=table, now=now,
                    today=today, earlier=(filters.on or today) - step,
                    later=(filters.on or today) + step, done=flash.done,
                    may_write=may_write, outside=outside)
    response.headers.update(PRIVATE)
    return response


def _login(request: Request[Any, Any, Any], clinic: Clinic, locale: str, status: int = 200,
           error: str | None = None, fields: dict[str, str] | None = None,
           form: dict[str, str] | None = None) -> Template:
    response = page(request, "pages/staff_login.html", locale, status_code=status, clinic=clinic,
                    error=error, fields=fields or {},
                    email=(form or {}).get("email", "").strip()[:254])
    response.headers.update(PRIVATE)
    return response


def _to(request: Request[Any, Any, Any], name: str, clinic: Clinic) -> Redirect:
    return Redirect(request.app.state.urls(name, slug=clinic.slug), status_code=303,
                    headers=PRIVATE)


ROUTER = Router(path="/staff", route_handlers=[login_page, login, logout, dashboard])
