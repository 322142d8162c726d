"""Patients' requests over HTTP (admin): find a person by e-mail or phone, download their data
as JSON, erase it. Every page is private (no-store); the SQL logs each call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.response import Template

from dentbook import patients
from dentbook.db import Conn
from dentbook.errors import Invalid
from dentbook.forms import parse
from dentbook.staff import StaffUser
from dentbook.tenancy import Clinic
from dentbook.web.guards import admin
from dentbook.web.render import PRIVATE, page

_ERASE_STATUS = {"erased": 200, "refused": 409, "nothing_found": 404}


@get("/", name="patients", guards=[admin])
async def patients_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                        staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                        locale: NamedDependency[str]) -> Template:
    raw = {k: v for k, v in request.query_params.items() if v}
    if not raw:
        return _page(request, clinic, staff_user, locale)
    try:
        query = parse(patients.PatientQuery, raw)
    except Invalid as exc:
        return _page(request, clinic, staff_user, locale, 422, raw=raw, fields=exc.fields)
    visits = await patients.find(staff_tx, query)
    return _page(request, clinic, staff_user, locale, 200 if visits else 404, raw=raw,
                 query=query, visits=visits)


@get("/export", name="patients_export", guards=[admin])
async def export(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                 staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                 locale: NamedDependency[str]) -> Response[bytes] | Template:
    raw = {k: v for k, v in request.query_params.items() if v}
    try:
        query = parse(patients.PatientQuery, raw)
    except Invalid as exc:
        return _page(request, clinic, staff_user, locale, 422, raw=raw, fields=exc.fields)
    data = await patients.export(staff_tx, query, locale)
    if data is None:
        return _page(request, clinic, staff_user, locale, 404, raw=raw, query=query, visits=[])
    name = f"patient-data-{clinic.slug}-{datetime.now(UTC):%Y%m%d}.json"
    return Response(msgspec.json.format(msgspec.json.encode(data), indent=2),
                    media_type="application/json",
                    headers={**PRIVATE, "Content-Disposition": f'attachment; filename="{name}"'})


@post("/erase", name="patients_erase", guards=[admin], status_code=200)
async def erase(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                locale: NamedDependency[str]) -> Template:
    raw = {k: v for k, v in (await request.form()).items() if isinstance(v, str) and v}
    try:
        form = parse(patients.EraseForm, raw)
        query = parse(patients.PatientQuery, raw)
    except Invalid as exc:
        return _page(request, clinic, staff_user, locale, 422, raw=raw, fields=exc.fields)
    if not form.confirm:
        visits = await patients.find(staff_tx, query)
        return _page(request, clinic, staff_user, locale, 422, raw=raw, query=query,
                     visits=visits, fields={"confirm": "erase_confirm_required"})
    result = await patients.erase(staff_tx, query)
    return _page(request, clinic, staff_user, locale, _ERASE_STATUS[result.outcome], raw=raw,
                 query=query, erasure=result)


def _page(request: Request[Any, Any, Any], clinic: Clinic, user: StaffUser, locale: str,
          status: int = 200, *, raw: dict[str, str] | None = None,
          fields: dict[str, str] | None = None, query: patients.PatientQuery | None = None,
          visits: list[patients.PatientVisit] | None = None,
          erasure: patients.Erasure | None = None) -> Template:
    response = page(request, "pages/patients.html", locale, status_code=status, clinic=clinic,
                    staff=user, form=raw or {}, fields=fields or {}, query=query, visits=visits,
                    erasure=erasure, kept=patients.kept_explanation(locale))
    response.headers.update(PRIVATE)
    return response


ROUTER = Router(path="/staff/patients", route_handlers=[patients_page, export, erase])
