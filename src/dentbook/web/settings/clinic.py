"""Settings, the clinic: `/{slug}/staff/settings` (the sections), `…/policy` (cancellation
window, late refund share, reminder offsets) and `…/clinic` (name, address, phone, e-mail,
time zone, default language). A change is seen at once on the clinic's public page: this
process forgets its copy of the clinic as soon as the change is committed, every other one
on the tenants trigger's announcement. Admins only; the SQL functions check the role
again."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from dentbook import clinic_settings, doctors
from dentbook.clinic_settings import ClinicSettings
from dentbook.db import Conn
from dentbook.errors import Invalid
from dentbook.forms import parse
from dentbook.live.grids import Grids
from dentbook.staff import StaffUser
from dentbook.tenancy import Clinic, ClinicDb, Clinics
from dentbook.web.forms import form_values
from dentbook.web.guards import admin
from dentbook.web.settings.common import back_to, settings_page
from dentbook.web.state import AppState


@get("/", name="settings", guards=[admin])
async def settings_index(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                         locale: NamedDependency[str]) -> Template:
    return settings_page(request, "index", locale, clinic=clinic)


@get("/policy", name="settings_policy", guards=[admin])
async def policy_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                      staff_tx: NamedDependency[Conn], locale: NamedDependency[str]) -> Template:
    return _policy(request, clinic, locale, await clinic_settings.read(staff_tx))


@post("/policy", name="settings_policy_save", guards=[admin], status_code=303)
async def save_policy(request: Request[Any, Any, Any], state: AppState,
                      clinic_db: NamedDependency[ClinicDb],
                      staff_user: NamedDependency[StaffUser],
                      locale: NamedDependency[str]) -> Redirect | Template:
    raw = await form_values(request)
    try:
        form = parse(clinic_settings.PolicyForm, raw)
        await clinic_settings.set_policy(clinic_db, staff_user.id, form)
    except Invalid as exc:
        return _policy(request, clinic_db.clinic, locale, None, 422, fields=exc.fields, values=raw)
    _forget(state.clinics, state.grids, clinic_db.clinic)
    return back_to(request, "settings_policy", slug=clinic_db.clinic.slug)


@post("/retention", name="settings_retention_save", guards=[admin], status_code=303)
async def save_retention(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                         staff_tx: NamedDependency[Conn],
                         locale: NamedDependency[str]) -> Redirect | Template:
    raw = await form_values(request)
    try:
        await clinic_settings.set_retention(staff_tx, parse(clinic_settings.RetentionForm, raw))
    except Invalid as exc:
        return _policy(request, clinic, locale, await clinic_settings.read(staff_tx), 422,
                       fields=exc.fields, values=raw)
    return back_to(request, "settings_policy", slug=clinic.slug, _fragment="retention")


@get("/clinic", name="settings_clinic", guards=[admin])
async def clinic_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                      staff_tx: NamedDependency[Conn], locale: NamedDependency[str]) -> Template:
    # The stored details (this process's copy of the clinic may be a moment old) and the
    # visits a change of time zone has left outside working hours.
    current = await clinic_settings.read(staff_tx)
    outside = await doctors.outside_hours(staff_tx)
    return _details(request, clinic, locale, current, outside=outside)


@post("/clinic", name="settings_clinic_save", guards=[admin], status_code=303)
async def save_clinic(request: Request[Any, Any, Any], state: AppState,
                      clinic_db: NamedDependency[ClinicDb],
                      staff_user: NamedDependency[StaffUser],
                      locale: NamedDependency[str]) -> Redirect | Template:
    raw = await form_values(request)
    try:
        form = parse(clinic_settings.ClinicForm, raw)
        await clinic_settings.set_details(clinic_db, staff_user.id, form)
    except Invalid as exc:
        return _details(request, clinic_db.clinic, locale, None, 422, fields=exc.fields,
                        values=raw, outside=[])
    _forget(state.clinics, state.grids, clinic_db.clinic)
    return back_to(request, "settings_clinic", slug=clinic_db.clinic.slug)


def _forget(clinics: Clinics, grids: Grids, clinic: Clinic) -> None:
    """The change is committed: this process reads the clinic and renders its grids
    afresh from the next request on (the others do on the trigger's announcement)."""
    clinics.forget(clinic.id)
    grids.clinic_changed(clinic.id)


def _policy(request: Request[Any, Any, Any], clinic: Clinic, locale: str,
            current: ClinicSettings | None, status: int = 200, **context: Any) -> Template:
    """The policy and retention forms: the stored values, under what was just typed."""
    values = {}
    if current is not None:
        values = {"cancel_window_hours": str(current.cancel_window_hours),
                  "late_refund_percent": str(current.late_refund_percent),
                  "reminder_hours": current.reminders,
                  "retention_years": str(current.retention_years),
                  "unpaid_erasure_days": str(current.unpaid_erasure_days)}
    context["values"] = {**values, **context.get("values", {})}
    return settings_page(request, "policy", locale, status, clinic=clinic, **context)


def _details(request: Request[Any, Any, Any], clinic: Clinic, locale: str,
             current: ClinicSettings | None, status: int = 200, **context: Any) -> Template:
    if current is not None:
        context["values"] = {"clinic_name": current.name, "address": current.address,
                             "phone": current.phone, "email": current.email,
                             "time_zone": current.time_zone,
                             "default_locale": current.default_locale}
    return settings_page(request, "clinic", locale, status, clinic=clinic,
                         time_zones=clinic_settings.time_zones(), **context)
