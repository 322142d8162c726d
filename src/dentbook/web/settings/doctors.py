"""Settings, doctors: `/{slug}/staff/settings/doctors` — the list and adding one; each
doctor's page with name and active flag, weekly hours, days off and the calendar feed,
and every future visit the hours no longer cover (linked to the agenda, where reception
moves it). Admins only; the SQL functions check the role again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from dentbook import doctors, feeds
from dentbook.db import Conn
from dentbook.errors import Invalid, NotFound
from dentbook.forms import parse, path_id
from dentbook.tenancy import Clinic
from dentbook.web.forms import form_values
from dentbook.web.guards import admin
from dentbook.web.settings.common import absolute, back_to, settings_page

# Days off shown on a doctor's page: from a month ago on.
_DAYS_OFF_SHOWN = timedelta(days=31)


@get("/doctors", name="settings_doctors", guards=[admin])
async def doctors_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                       staff_tx: NamedDependency[Conn], locale: NamedDependency[str]) -> Template:
    return await _list(request, clinic, staff_tx, locale)


@post("/doctors", name="settings_doctor_add", guards=[admin], status_code=303)
async def add_doctor(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                     staff_tx: NamedDependency[Conn],
                     locale: NamedDependency[str]) -> Redirect | Template:
    raw = await form_values(request)
    try:
        new = await doctors.add(staff_tx, parse(doctors.NameForm, raw))
    except Invalid as exc:
        return await _list(request, clinic, staff_tx, locale, 422, fields=exc.fields, values=raw)
    return back_to(request, "settings_doctor", slug=clinic.slug, doctor_id=new)


@get("/doctors/{doctor_id:str}", name="settings_doctor", guards=[admin])
async def doctor_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                      staff_tx: NamedDependency[Conn], locale: NamedDependency[str],
                      doctor_id: FromPath[str]) -> Template:
    return await _doctor(request, clinic, staff_tx, locale, path_id(doctor_id))


@post("/doctors/{doctor_id:str}", name="settings_doctor_save", guards=[admin], status_code=303)
async def save_doctor(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                      staff_tx: NamedDependency[Conn], locale: NamedDependency[str],
                      doctor_id: FromPath[str]) -> Redirect | Template:
    doctor, raw = path_id(doctor_id), await form_values(request)
    try:
        await doctors.update(staff_tx, doctor, parse(doctors.DoctorForm, raw))
    except Invalid as exc:
        return await _doctor(request, clinic, staff_tx, locale, doctor, 422, fields=exc.fields,
                             values=raw)
    return back_to(request, "settings_doctor", slug=clinic.slug, doctor_id=doctor)


@post("/doctors/{doctor_id:str}/hours", name="settings_doctor_hours", guards=[admin],
      status_code=303)
async def save_hours(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                     staff_tx: NamedDependency[Conn], locale: NamedDependency[str],
                     doctor_id: FromPath[str]) -> Redirect | Template:
    doctor, raw = path_id(doctor_id), await form_values(request)
    try:
        ranges = doctors.week_hours(parse(doctors.HoursForm, raw))
        await doctors.set_hours(staff_tx, doctor, ranges)
    except Invalid as exc:
        return await _doctor(request, clinic, staff_tx, locale, doctor, 422, fields=exc.fields,
                             values=raw)
    return back_to(request, "settings_doctor", slug=clinic.slug, doctor_id=doctor,
                   _fragment="outside")


@post("/doctors/{doctor_id:str}/days-off", name="settings_doctor_days_off", guards=[admin],
      status_code=303)
async def add_days_off(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                       staff_tx: NamedDependency[Conn], locale: NamedDependency[str],
                       doctor_id: FromPath[str]) -> Redirect | Template:
    doctor, raw = path_id(doctor_id), await form_values(request)
    try:
        first, last = doctors.days_off_span(parse(doctors.DaysOffForm, raw))
        await doctors.add_days_off(staff_tx, doctor, first, last)
    except Invalid as exc:
        return await _doctor(request, clinic, staff_tx, locale, doctor, 422, fields=exc.fields,
                             values=raw)
    return back_to(request, "settings_doctor", slug=clinic.slug, doctor_id=doctor,
                   _fragment="outside")


@post("/doctors/{doctor_id:str}/days-off/delete", name="settings_doctor_day_on", guards=[admin],
      status_code=303)
async def remove_day_off(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                         staff_tx: NamedDependency[Conn], locale: NamedDependency[str],
                         doctor_id: FromPath[str]) -> Redirect | Template:
    doctor = path_id(doctor_id)
    try:
        form = parse(doctors.DayForm, await form_values(request))
    except Invalid as exc:
        return await _doctor(request, clinic, staff_tx, locale, doctor, 422,
                             error=next(iter(exc.fields.values())))
    await doctors.remove_day_off(staff_tx, doctor, form.day)
    return back_to(request, "settings_doctor", slug=clinic.slug, doctor_id=doctor)


@post("/doctors/{doctor_id:str}/feed", name="settings_doctor_feed", guards=[admin],
      status_code=200)
async def new_feed(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                   staff_tx: NamedDependency[Conn], locale: NamedDependency[str],
                   doctor_id: FromPath[str]) -> Template:
    """A new feed address, shown once on the page this answers with (never in a URL that
    a browser's history or a redirect would keep)."""
    doctor = path_id(doctor_id)
    token = await feeds.rotate(staff_tx, doctor)
    link = absolute(request, request.app.state.urls("doctor_feed", slug=clinic.slug,
                                                    feed=f"{token}.ics"))
    return await _doctor(request, clinic, staff_tx, locale, doctor, feed_link=link)


@post("/doctors/{doctor_id:str}/feed/delete", name="settings_doctor_feed_off", guards=[admin],
      status_code=303)
async def feed_off(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                   staff_tx: NamedDependency[Conn], doctor_id: FromPath[str]) -> Redirect:
    doctor = path_id(doctor_id)
    await feeds.turn_off(staff_tx, doctor)
    return back_to(request, "settings_doctor", slug=clinic.slug, doctor_id=doctor)


async def _list(request: Request[Any, Any, Any], clinic: Clinic, conn: Conn, locale: str,
                status: int = 200, **context: Any) -> Template:
    return settings_page(request, "doctors", locale, status, clinic=clinic,
                         doctors=await doctors.list_doctors(conn),
                         outside=await doctors.outside_hours(conn), **context)


async def _doctor(request: Request[Any, Any, Any], clinic: Clinic, conn: Conn, locale: str,
                  doctor_id: UUID, status: int = 200, values: dict[str, str] | None = None,
                  **context: Any) -> Template:
    found = await doctors.doctor(conn, doctor_id)
    if found is None:
        raise NotFound("doctor")
    hours = await doctors.hours(conn, doctor_id)
    today = datetime.now(UTC).astimezone(clinic.zone).date()
    shown = {"doctor_name": found.name, "active": "on" if found.active else "",
             **doctors.hours_text(hours), **(values or {})}
    if values and "doctor_name" in values:  # the doctor's own form came back: as it was sent
        shown["active"] = values.get("active", "")
    return settings_page(request, "doctor", locale, status, clinic=clinic, doctor=found,
                         values=shown, weekdays=doctors.WEEKDAYS,
                         days_off=await doctors.days_off(conn, doctor_id, today - _DAYS_OFF_SHOWN),
                         outside=await doctors.outside_hours(conn, doctor_id), **context)
