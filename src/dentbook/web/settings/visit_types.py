"""Settings, visit types: `/{slug}/staff/settings/visit-types` — the list, adding one, and
each type's page to edit it. A change applies to bookings made from then on; booked
visits keep their times and amounts. Admins only; the SQL functions check the role again."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from dentbook import visit_types
from dentbook.db import Conn
from dentbook.errors import Invalid, NotFound
from dentbook.forms import parse, path_id
from dentbook.tenancy import Clinic
from dentbook.web.forms import form_values
from dentbook.web.guards import admin
from dentbook.web.settings.common import back_to, settings_page

_NEW = {"active": "on"}


@get("/visit-types", name="settings_visit_types", guards=[admin])
async def visit_types_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                           staff_tx: NamedDependency[Conn],
                           locale: NamedDependency[str]) -> Template:
    return await _list(request, clinic, staff_tx, locale, values=_NEW)


@post("/visit-types", name="settings_visit_type_add", guards=[admin], status_code=303)
async def add_visit_type(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                         staff_tx: NamedDependency[Conn],
                         locale: NamedDependency[str]) -> Redirect | Template:
    raw = await form_values(request)
    try:
        await visit_types.add(staff_tx, parse(visit_types.VisitTypeForm, raw))
    except Invalid as exc:
        return await _list(request, clinic, staff_tx, locale, 422, fields=exc.fields, values=raw)
    return back_to(request, "settings_visit_types", slug=clinic.slug)


@get("/visit-types/{visit_type_id:str}", name="settings_visit_type", guards=[admin])
async def visit_type_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                          staff_tx: NamedDependency[Conn], locale: NamedDependency[str],
                          visit_type_id: FromPath[str]) -> Template:
    return await _edit(request, clinic, staff_tx, locale, path_id(visit_type_id))


@post("/visit-types/{visit_type_id:str}", name="settings_visit_type_save", guards=[admin],
      status_code=303)
async def save_visit_type(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                          staff_tx: NamedDependency[Conn], locale: NamedDependency[str],
                          visit_type_id: FromPath[str]) -> Redirect | Template:
    found, raw = path_id(visit_type_id), await form_values(request)
    try:
        await visit_types.update(staff_tx, found, parse(visit_types.VisitTypeForm, raw))
    except Invalid as exc:
        return await _edit(request, clinic, staff_tx, locale, found, 422, fields=exc.fields,
                           values=raw)
    return back_to(request, "settings_visit_types", slug=clinic.slug)


async def _list(request: Request[Any, Any, Any], clinic: Clinic, conn: Conn, locale: str,
                status: int = 200, **context: Any) -> Template:
    return settings_page(request, "visit_types", locale, status, clinic=clinic,
                         visit_types=await visit_types.list_visit_types(conn), **context)


async def _edit(request: Request[Any, Any, Any], clinic: Clinic, conn: Conn, locale: str,
                visit_type_id: UUID, status: int = 200, values: dict[str, str] | None = None,
                **context: Any) -> Template:
    found = await visit_types.visit_type(conn, visit_type_id)
    if found is None:
        raise NotFound("visit type")
    shown = values if values is not None else {
        "name_pl": found.name_pl, "name_en": found.name_en,
        "duration_minutes": str(found.duration_minutes), "deposit": found.deposit,
        "active": "on" if found.active else ""}
    return settings_page(request, "visit_type", locale, status, clinic=clinic, visit_type=found,
                         values=shown, **context)
