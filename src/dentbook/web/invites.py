"""The invitee's side of an invitation: `GET, POST /{slug}/staff/invite/{token}` — choose a
password, once. An unknown or used link is 404; an expired one 410 (ask for a new link)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from dentbook import accounts
from dentbook.errors import Invalid, NotFound
from dentbook.forms import parse
from dentbook.tenancy import Clinic, ClinicDb
from dentbook.web.errors import error_page
from dentbook.web.forms import form_values
from dentbook.web.render import PRIVATE, page


@get("/staff/invite/{token:str}", name="staff_invite")
async def invite_page(request: Request[Any, Any, Any], clinic_db: NamedDependency[ClinicDb],
                      locale: NamedDependency[str], token: FromPath[str]) -> Template:
    found = await _open(clinic_db, token)
    if found.expired:
        return _expired(request)
    return _form(request, clinic_db.clinic, locale, token, found)


@post("/staff/invite/{token:str}", name="staff_invite_submit", status_code=200)
async def set_password(request: Request[Any, Any, Any], clinic_db: NamedDependency[ClinicDb],
                       locale: NamedDependency[str], token: FromPath[str]) -> Template:
    found = await _open(clinic_db, token)
    if found.expired:
        return _expired(request)
    try:
        form = parse(accounts.PasswordForm, await form_values(request))
        password = accounts.check_passwords(form)
    except Invalid as exc:
        return _form(request, clinic_db.clinic, locale, token, found, 422, exc.fields)
    if await accounts.accept(clinic_db, token, password) is None:
        # Spent by a second submission meanwhile, or it expired while the password was hashed.
        if (await _open(clinic_db, token)).expired:
            return _expired(request)
        raise NotFound("invitation")
    return _answer(request, "pages/staff_invite.html", locale, 200, clinic=clinic_db.clinic,
                   done=True, email=found.email)


async def _open(clinic_db: ClinicDb, token: str) -> accounts.Invitation:
    found = await accounts.invitation(clinic_db, token)
    if found is None:
        raise NotFound("invitation")
    return found


def _form(request: Request[Any, Any, Any], clinic: Clinic, locale: str, token: str,
          found: accounts.Invitation, status: int = 200,
          fields: dict[str, str] | None = None) -> Template:
    return _answer(request, "pages/staff_invite.html", locale, status, clinic=clinic, done=False,
                   email=found.email, token=token, fields=fields or {})


def _expired(request: Request[Any, Any, Any]) -> Template:
    response = error_page(request, 410, "invite_expired")
    response.headers.update(PRIVATE)
    return response


def _answer(request: Request[Any, Any, Any], name: str, locale: str, status: int,
            **context: Any) -> Template:
    response = page(request, name, locale, status_code=status, **context)
    response.headers.update(PRIVATE)
    return response
