"""Settings, staff accounts: `/{slug}/staff/settings/staff` — the list, inviting someone
(the set-password link is shown once, here), changing a role, deactivating and
reactivating. Admins only; the SQL functions check the role again."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from dentbook import accounts
from dentbook.accounts import Issued
from dentbook.db import Conn
from dentbook.errors import Invalid
from dentbook.forms import parse, path_id
from dentbook.refusals import LastAdmin
from dentbook.staff import StaffUser
from dentbook.tenancy import Clinic
from dentbook.web.forms import form_values
from dentbook.web.guards import admin
from dentbook.web.settings.common import absolute, back_to, settings_page


@get("/staff", name="settings_staff", guards=[admin])
async def staff_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                     staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                     locale: NamedDependency[str]) -> Template:
    return await _page(request, clinic, staff_user, staff_tx, locale)


@post("/staff/invite", name="settings_staff_invite", guards=[admin], status_code=200)
async def invite(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                 staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                 locale: NamedDependency[str]) -> Template:
    raw = await form_values(request)
    try:
        issued = await accounts.invite(staff_tx, parse(accounts.InviteForm, raw))
    except Invalid as exc:
        return await _page(request, clinic, staff_user, staff_tx, locale, 422,
                           fields=exc.fields, values=raw)
    return await _page(request, clinic, staff_user, staff_tx, locale, issued=issued)


@post("/staff/{staff_id:str}/invite", name="settings_staff_reinvite", guards=[admin],
      status_code=200)
async def reinvite(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                   staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                   locale: NamedDependency[str], staff_id: FromPath[str]) -> Template:
    try:
        issued = await accounts.reinvite(staff_tx, path_id(staff_id))
    except Invalid as exc:  # the account has set its password meanwhile
        return await _page(request, clinic, staff_user, staff_tx, locale, 409,
                           error=next(iter(exc.fields.values())))
    return await _page(request, clinic, staff_user, staff_tx, locale, issued=issued)


@post("/staff/{staff_id:str}/role", name="settings_staff_role", guards=[admin], status_code=303)
async def change_role(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                      staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                      locale: NamedDependency[str], staff_id: FromPath[str]) -> Redirect | Template:
    account = path_id(staff_id)
    try:
        form = parse(accounts.RoleForm, await form_values(request))
        await accounts.set_role(staff_tx, account, form.role)
    except Invalid as exc:
        return await _page(request, clinic, staff_user, staff_tx, locale, 422,
                           error=next(iter(exc.fields.values())))
    except LastAdmin:
        return await _page(request, clinic, staff_user, staff_tx, locale, 409, error="last_admin")
    return back_to(request, "settings_staff", slug=clinic.slug)


@post("/staff/{staff_id:str}/deactivate", name="settings_staff_deactivate", guards=[admin],
      status_code=303)
async def deactivate(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                     staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                     locale: NamedDependency[str], staff_id: FromPath[str]) -> Redirect | Template:
    return await _set_active(request, clinic, staff_user, staff_tx, locale, staff_id, False)


@post("/staff/{staff_id:str}/reactivate", name="settings_staff_reactivate", guards=[admin],
      status_code=303)
async def reactivate(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                     staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                     locale: NamedDependency[str], staff_id: FromPath[str]) -> Redirect | Template:
    return await _set_active(request, clinic, staff_user, staff_tx, locale, staff_id, True)


async def _set_active(request: Request[Any, Any, Any], clinic: Clinic, staff_user: StaffUser,
                      conn: Conn, locale: str, staff_id: str, active: bool) -> Redirect | Template:
    try:
        await accounts.set_active(conn, path_id(staff_id), active)
    except LastAdmin:
        return await _page(request, clinic, staff_user, conn, locale, 409, error="last_admin")
    return back_to(request, "settings_staff", slug=clinic.slug)


async def _page(request: Request[Any, Any, Any], clinic: Clinic, staff_user: StaffUser,
                conn: Conn, locale: str, status: int = 200, issued: Issued | None = None,
                **context: Any) -> Template:
    link = None
    if issued is not None:
        link = absolute(request, request.app.state.urls("staff_invite", slug=clinic.slug,
                                                        token=issued.token))
    return settings_page(request, "staff", locale, status, clinic=clinic, staff=staff_user,
                         accounts=await accounts.list_accounts(conn), issued=issued,
                         invite_link=link, **context)
