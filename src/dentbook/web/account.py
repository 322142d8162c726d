"""A staff member's own account over HTTP: the sign-in's second step, enrolling and turning
off a second factor, signing out of every session, and the clinic's "admins must use
two-factor sign-in" setting.

The code step follows a right password for an account with a second factor; its challenge
cookie names the pending sign-in for a few minutes (`dentbook.staff`). Enrolment shows the
QR code inline (no request leaves the page for it) and the secret to type by hand, confirms
with a code, then shows ten recovery codes once. Every page here is private (no-store).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Router, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from dentbook import staff, totp, twofactor
from dentbook.db import Conn
from dentbook.errors import Invalid
from dentbook.forms import parse
from dentbook.i18n import translations
from dentbook.staff import StaffUser
from dentbook.tenancy import Clinic, ClinicDb
from dentbook.web.clients import client_address
from dentbook.web.cookies import staff_cookie
from dentbook.web.forms import form_values
from dentbook.web.guards import ENROLMENT, admin, viewer
from dentbook.web.render import PRIVATE, page
from dentbook.web.state import AppState

SETTINGS = "select admins_need_2fa from dentbook.tenants"
SET_REQUIRED = "select dentbook.set_admins_need_2fa(%s)"


class RequireForm(msgspec.Struct, frozen=True):
    """The security settings form: an unticked checkbox sends nothing."""

    required: bool = False


@get("/login/code", name="staff_login_code")
async def code_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                    locale: NamedDependency[str]) -> Template | Redirect:
    if request.cookies.get(staff.CHALLENGE_COOKIE) is None:
        return _to(request, "staff_login", clinic)
    return _code_page(request, clinic, locale)


@post("/login/code", name="staff_login_code_submit", status_code=303)
async def code_submit(request: Request[Any, Any, Any], state: AppState,
                      clinic_db: NamedDependency[ClinicDb],
                      locale: NamedDependency[str]) -> Template | Redirect:
    clinic = clinic_db.clinic
    raw = await form_values(request)
    try:
        token = await twofactor.second_step(
            clinic_db, state.settings, request.cookies.get(staff.CHALLENGE_COOKIE),
            parse(twofactor.CodeForm, raw), client_address(request),
            request.cookies.get(staff.COOKIE))
    except Invalid:
        return _code_page(request, clinic, locale, 422, "wrong_code")
    except staff.LoginFailed:
        return _code_page(request, clinic, locale, 403, "wrong_code")
    except staff.LoginThrottled as exc:
        refused = _code_page(request, clinic, locale, 429, "login_throttled")
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    except twofactor.ChallengeExpired:
        expired = _private(page(request, "pages/staff_login.html", locale, status_code=403,
                                clinic=clinic, error="challenge_expired", fields={}, email=""))
        expired.cookies.append(_clear(request, clinic, staff.CHALLENGE_COOKIE))
        return expired
    signed = _to(request, "staff_dashboard", clinic)
    signed.cookies.append(staff_cookie(request, clinic, staff.COOKIE, token))
    signed.cookies.append(_clear(request, clinic, staff.CHALLENGE_COOKIE))
    return signed


@get("/account/2fa", name="staff_account_2fa", guards=[viewer], opt=ENROLMENT)
async def account_page(request: Request[Any, Any, Any], clinic_db: NamedDependency[ClinicDb],
                       staff_user: NamedDependency[StaffUser],
                       locale: NamedDependency[str]) -> Template:
    return await _account(request, clinic_db, staff_user, locale)


@post("/account/2fa", name="staff_account_2fa_confirm", guards=[viewer], opt=ENROLMENT,
      status_code=200)
async def confirm(request: Request[Any, Any, Any], clinic_db: NamedDependency[ClinicDb],
                  staff_user: NamedDependency[StaffUser], locale: NamedDependency[str]) -> Template:
    """Enrolment confirmed with a code: the recovery codes, shown this once."""
    raw = await form_values(request)
    try:
        codes = await twofactor.confirm(clinic_db, staff_user, parse(twofactor.CodeForm, raw).code)
    except (Invalid, twofactor.WrongCode):
        return await _account(request, clinic_db, staff_user, locale, 422, "wrong_code")
    return _private(page(request, "pages/account_2fa.html", locale, clinic=clinic_db.clinic,
                         staff=staff_user, state=None, enrolment=None, qr=None, codes=codes,
                         error=None))


@post("/account/2fa/disable", name="staff_account_2fa_disable", guards=[viewer], status_code=303)
async def disable(request: Request[Any, Any, Any], state: AppState,
                  clinic_db: NamedDependency[ClinicDb], staff_user: NamedDependency[StaffUser],
                  locale: NamedDependency[str]) -> Template | Redirect:
    raw = await form_values(request)
    try:
        await twofactor.disable(clinic_db, state.settings, staff_user,
                                parse(twofactor.CodeForm, raw).code, client_address(request))
    except (Invalid, twofactor.WrongCode):
        return await _account(request, clinic_db, staff_user, locale, 403, "wrong_code")
    except staff.LoginThrottled as exc:
        refused = await _account(request, clinic_db, staff_user, locale, 429, "login_throttled")
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    return _to(request, "staff_account_2fa", clinic_db.clinic)


@post("/account/signout-all", name="staff_signout_all", status_code=303)
async def sign_out_everywhere(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                              service_tx: NamedDependency[Conn]) -> Redirect:
    """Every session of this account ends (and their live streams), this one included."""
    await staff.sign_out_everywhere(service_tx, request.cookies.get(staff.COOKIE))
    response = _to(request, "staff_login", clinic)
    response.cookies.append(_clear(request, clinic, staff.COOKIE))
    return response


@get("/settings/security", name="security_settings", guards=[admin])
async def security_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                        staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                        locale: NamedDependency[str]) -> Template:
    row = await (await staff_tx.execute(SETTINGS)).fetchone()
    return _private(page(request, "pages/security_settings.html", locale, clinic=clinic,
                         staff=staff_user, required=bool(row and row[0])))


@post("/settings/security", name="security_settings_submit", guards=[admin], status_code=303)
async def security_submit(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                          staff_tx: NamedDependency[Conn]) -> Redirect:
    form = parse(RequireForm, await request.form())
    await staff_tx.execute(SET_REQUIRED, (form.required,))
    return _to(request, "security_settings", clinic)


async def _account(request: Request[Any, Any, Any], clinic_db: ClinicDb, user: StaffUser,
                   locale: str, status: int = 200, error: str | None = None) -> Template:
    clinic = clinic_db.clinic
    state, enrolment = await twofactor.overview(clinic_db, user, clinic.name)
    qr = None
    if enrolment is not None:
        title = translations(locale).gettext("QR code for your authenticator app")
        qr = totp.qr_svg(enrolment.uri, title=str(title))
    return _private(page(request, "pages/account_2fa.html", locale, status_code=status,
                         clinic=clinic, staff=user, state=state, enrolment=enrolment, qr=qr,
                         codes=None, error=error))


def _code_page(request: Request[Any, Any, Any], clinic: Clinic, locale: str, status: int = 200,
               error: str | None = None) -> Template:
    return _private(page(request, "pages/staff_login_code.html", locale, status_code=status,
                         clinic=clinic, error=error))


def _private(response: Template) -> Template:
    response.headers.update(PRIVATE)
    return response


def _to(request: Request[Any, Any, Any], name: str, clinic: Clinic) -> Redirect:
    return Redirect(request.app.state.urls(name, slug=clinic.slug), status_code=303,
                    headers=PRIVATE)


def _clear(request: Request[Any, Any, Any], clinic: Clinic, key: str) -> Cookie:
    return staff_cookie(request, clinic, key, "", max_age=0)


ROUTER = Router(path="/staff", route_handlers=[
    code_page, code_submit, account_page, confirm, disable, sign_out_everywhere,
    security_page, security_submit])
