"""The front desk over HTTP (§9): the phone-booking and block forms, a visit's page with
its move, cancel and attendance forms, and the POSTs they send.

Plain forms, no JavaScript needed: a success answers 303 to the agenda on the visit's day
with what was done in the query (`done=`) and the visit as the fragment; a refusal answers
the same form again with the values typed, the error (naming what the time collided with)
and 409/422; another clinic's ids are simply unknown (404). Every route is guarded by role
(a viewer gets 403 `data-error="forbidden"`), and the SQL functions check the role again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from dentbook import agenda, desk, tenancy
from dentbook.agenda import Appointment
from dentbook.db import Conn
from dentbook.errors import DomainError, Invalid, NotFound, SlotNotOffered
from dentbook.forms import Id, path_id
from dentbook.staff import Role, StaffUser
from dentbook.tenancy import Clinic
from dentbook.web.forms import form_values
from dentbook.web.guards import reception, viewer
from dentbook.web.render import PRIVATE, page

# A refusal -> (status, data-error code).
_ANSWERS: dict[type[DomainError], tuple[int, str]] = {
    Invalid: (422, "invalid"),
    SlotNotOffered: (422, "desk_not_offered"),
    desk.Clash: (409, "slot_taken"),
    desk.WrongState: (409, "wrong_state"),
    desk.TooEarly: (409, "too_early"),
}
_REFUSALS = tuple(_ANSWERS)
F = TypeVar("F", bound=msgspec.Struct)


class Prefill(msgspec.Struct, frozen=True):
    """What an agenda cell hands a form: `?doctor=&start=`."""

    doctor: Id | None = None
    start: desk.When | None = None


@get("/bookings/new", name="desk_phone_form", guards=[reception])
async def phone_form(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                     staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                     locale: NamedDependency[str]) -> Template:
    return await _phone_page(request, clinic, staff_user, staff_tx, locale,
                             _prefill(request, clinic))


@post("/bookings", name="desk_book", guards=[reception], status_code=303)
async def book(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
               staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
               locale: NamedDependency[str]) -> Redirect | Template:
    raw = await form_values(request)
    try:
        form = desk.read_form(desk.PhoneBooking, raw, clinic.zone)
        booked = await desk.book_by_phone(staff_tx, form, clinic.default_locale)
    except _REFUSALS as exc:
        return await _phone_page(request, clinic, staff_user, staff_tx, locale, raw, exc)
    return _to_agenda(request, clinic, booked.starts_at, "booked", booked.booking_id)


@get("/blocks/new", name="desk_block_form", guards=[reception])
async def block_form(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                     staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                     locale: NamedDependency[str]) -> Template:
    return await _block_page(request, clinic, staff_user, staff_tx, locale,
                             _prefill(request, clinic))


@post("/blocks", name="desk_block", guards=[reception], status_code=303)
async def block(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                locale: NamedDependency[str]) -> Redirect | Template:
    raw = await form_values(request)
    try:
        form = desk.read_form(desk.BlockForm, raw, clinic.zone)
        made = await desk.block(staff_tx, form)
    except _REFUSALS as exc:
        return await _block_page(request, clinic, staff_user, staff_tx, locale, raw, exc)
    return _to_agenda(request, clinic, form.start, "blocked", made)


@post("/blocks/{booking_id:str}/delete", name="desk_unblock", guards=[reception], status_code=303)
async def unblock(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                  staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                  locale: NamedDependency[str], booking_id: FromPath[str]) -> Redirect | Template:
    found = await _load(staff_tx, booking_id)
    try:
        await desk.unblock(staff_tx, found.id)
    except _REFUSALS as exc:
        return await _visit_page(request, clinic, staff_user, staff_tx, locale, found,
                                 failed="unblock", exc=exc)
    return _to_agenda(request, clinic, found.starts_at, "unblocked", found.id)


@get("/bookings/{booking_id:str}", name="desk_visit", guards=[viewer])
async def visit(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                locale: NamedDependency[str], booking_id: FromPath[str]) -> Template:
    found = await _load(staff_tx, booking_id)
    if found.patient_name:
        await agenda.record_read(staff_tx, f"visit {found.id}", found.id)
    return await _visit_page(request, clinic, staff_user, staff_tx, locale, found,
                             link_revoked=request.query_params.get("done") == "link_revoked")


@post("/bookings/{booking_id:str}/move", name="desk_move", guards=[reception], status_code=303)
async def move(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
               staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
               locale: NamedDependency[str], booking_id: FromPath[str]) -> Redirect | Template:
    found = await _load(staff_tx, booking_id)
    raw = await form_values(request)
    try:
        moved = await desk.move(staff_tx, found.id, desk.read_form(desk.MoveForm, raw, clinic.zone))
    except _REFUSALS as exc:
        return await _visit_page(request, clinic, staff_user, staff_tx, locale, found,
                                 failed="move", exc=exc, typed=raw)
    return _to_agenda(request, clinic, moved.starts_at, "moved", found.id)


@post("/bookings/{booking_id:str}/cancel", name="desk_cancel", guards=[reception], status_code=303)
async def cancel(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                 staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                 locale: NamedDependency[str], booking_id: FromPath[str]) -> Redirect | Template:
    return await _visit_form(request, clinic, staff_user, staff_tx, locale, booking_id,
                             desk.CancelForm, desk.cancel, failed="cancel", done="cancelled")


@post("/bookings/{booking_id:str}/attendance", name="desk_attendance", guards=[reception],
      status_code=303)
async def attendance(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                     staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                     locale: NamedDependency[str], booking_id: FromPath[str]) -> Redirect | Template:
    return await _visit_form(request, clinic, staff_user, staff_tx, locale, booking_id,
                             desk.AttendanceForm, desk.attendance, failed="attendance",
                             done="attendance")


@post("/bookings/{booking_id:str}/link/revoke", name="desk_revoke_link", guards=[reception],
      status_code=303)
async def revoke_link(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                      staff_tx: NamedDependency[Conn], booking_id: FromPath[str]) -> Redirect:
    """The patient's link stops working (a forwarded or leaked e-mail); the next e-mail about
    the visit carries a new one."""
    found = await _load(staff_tx, booking_id)
    await desk.revoke_link(staff_tx, found.id)
    return Redirect(request.app.state.urls("desk_visit", slug=clinic.slug, booking_id=found.id,
                                           done="link_revoked"),
                    status_code=303, headers=PRIVATE)


async def _visit_form(request: Request[Any, Any, Any], clinic: Clinic, user: StaffUser,
                      conn: Conn, locale: str, booking_id: str, form: type[F],
                      change: Callable[[Conn, UUID, F], Awaitable[object]], failed: str,
                      done: str) -> Redirect | Template:
    """A form on the visit's page that leaves its time as it is (cancel, attendance): 303 to
    the agenda on the visit's day, or the page again with the refusal and what was typed."""
    found = await _load(conn, booking_id)
    raw = await form_values(request)
    try:
        await change(conn, found.id, desk.read_form(form, raw, clinic.zone))
    except _REFUSALS as exc:
        return await _visit_page(request, clinic, user, conn, locale, found,
                                 failed=failed, exc=exc, typed=raw)
    return _to_agenda(request, clinic, found.starts_at, done, found.id)


async def _load(conn: Conn, booking_id: str) -> Appointment:
    """The visit or block in the address, of this clinic (another's does not exist here)."""
    found = await agenda.appointment(conn, path_id(booking_id))
    if found is None:
        raise NotFound(booking_id)
    return found


def _prefill(request: Request[Any, Any, Any], clinic: Clinic) -> dict[str, str]:
    """Form values from an agenda cell's link; anything malformed is simply not used."""
    try:
        chosen = desk.read_form(Prefill, request.query_params, clinic.zone)
    except DomainError:
        return {}
    values = {"doctor_id": str(chosen.doctor) if chosen.doctor else ""}
    if chosen.start is not None:
        values["start"] = local_input(chosen.start, clinic)
    return values


def local_input(instant: datetime, clinic: Clinic) -> str:
    """An instant as `<input type="datetime-local">` shows it: the clinic's wall clock."""
    return instant.astimezone(clinic.zone).strftime("%Y-%m-%dT%H:%M")


def _refusal(exc: DomainError | None) -> dict[str, Any]:
    if exc is None:
        return {"error": None, "fields": {}, "conflict": None, "status_code": 200}
    status, code = _ANSWERS[type(exc)]
    return {"error": code, "fields": exc.fields if isinstance(exc, Invalid) else {},
            "conflict": exc.conflict if isinstance(exc, desk.Clash) else None,
            "status_code": status}


@dataclass(frozen=True)
class Option:
    id: UUID
    label: str


async def _phone_page(request: Request[Any, Any, Any], clinic: Clinic, user: StaffUser,
                      conn: Conn, locale: str, form: dict[str, str],
                      exc: DomainError | None = None) -> Template:
    types = [Option(v.id, f"{v.name(locale)} ({v.duration_minutes} min)")
             for v in await tenancy.list_visit_types(conn)]
    return _desk_page(request, "staff_phone", locale, clinic, user, exc, form=form,
                      doctors=await tenancy.list_doctors(conn), visit_types=types)


async def _block_page(request: Request[Any, Any, Any], clinic: Clinic, user: StaffUser,
                      conn: Conn, locale: str, form: dict[str, str],
                      exc: DomainError | None = None) -> Template:
    return _desk_page(request, "staff_block", locale, clinic, user, exc, form=form,
                      doctors=await agenda.list_doctors(conn))


async def _visit_page(request: Request[Any, Any, Any], clinic: Clinic, user: StaffUser,
                      conn: Conn, locale: str, found: Appointment, failed: str | None = None,
                      exc: DomainError | None = None, typed: dict[str, str] | None = None,
                      link_revoked: bool = False) -> Template:
    now = datetime.now(UTC)
    typed = typed or {}
    move_form = typed if failed == "move" else {
        "start": local_input(found.starts_at, clinic), "doctor_id": str(found.doctor_id)}
    return _desk_page(request, "staff_visit", locale, clinic, user, exc, a=found, now=now,
                      may_write=user.may(Role.RECEPTION), failed=failed, move_form=move_form,
                      cancel_form=typed if failed == "cancel" else {},
                      doctors=await tenancy.list_doctors(conn), link_revoked=link_revoked)


def _desk_page(request: Request[Any, Any, Any], name: str, locale: str, clinic: Clinic,
               user: StaffUser, exc: DomainError | None, **context: Any) -> Template:
    """A desk page (with the refusal being answered, if any), never cached."""
    response = page(request, f"pages/{name}.html", locale, clinic=clinic, staff=user,
                    **context, **_refusal(exc))
    response.headers.update(PRIVATE)
    return response


def _to_agenda(request: Request[Any, Any, Any], clinic: Clinic, at: datetime, done: str,
               booking: UUID) -> Redirect:
    day: date = at.astimezone(clinic.zone).date()
    return Redirect(request.app.state.urls("staff_dashboard", slug=clinic.slug, view="day",
                                           date=day.isoformat(), done=done,
                                           _fragment=f"booking-{booking}"),
                    status_code=303, headers=PRIVATE)


ROUTER = Router(path="/staff", route_handlers=[
    phone_form, book, block_form, block, unblock, visit, move, cancel, attendance, revoke_link])
