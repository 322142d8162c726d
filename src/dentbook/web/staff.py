"""Staff pages over HTTP: sign-in, sign-out and the read-only dashboard (§5).

The session lives in our own HttpOnly cookie holding a random id; the database keeps
only its hash (see `dentbook.staff`). Litestar's CSRF middleware guards both POSTs.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from dentbook import staff
from dentbook.db import Database, Level
from dentbook.errors import Invalid
from dentbook.settings import Settings
from dentbook.tenancy import Clinic, enter_clinic
from dentbook.web.render import page, request_locale

# Staff pages show patients' personal data: never stored by a browser or proxy cache.
_PRIVATE = {"Cache-Control": "no-store"}


@get("/{slug:str}/staff/login", name="staff_login")
async def login_page(request: Request[Any, Any, Any], db: NamedDependency[Database],
                     settings: NamedDependency[Settings], slug: FromPath[str]) -> Template | Redirect:
    clinic, user = await staff.signed_in_clinic(db, settings, slug, request.cookies.get(staff.COOKIE))
    if user is not None:
        return Redirect(f"/{clinic.slug}/staff", status_code=303, headers=_PRIVATE)
    return _login(request, clinic)


@post("/{slug:str}/staff/login", name="staff_login_submit", status_code=303)
async def login(request: Request[Any, Any, Any], db: NamedDependency[Database],
                settings: NamedDependency[Settings], slug: FromPath[str]) -> Template | Redirect:
    raw = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        form = staff.parse_login(raw)
        signed = await staff.sign_in(db, settings, slug, form,
                                     request.client.host if request.client else None,
                                     request.cookies.get(staff.COOKIE))
    except Invalid as exc:
        return _login(request, await _clinic(db, slug), 422, "invalid", exc.fields, raw)
    except staff.LoginFailed:
        return _login(request, await _clinic(db, slug), 403, "login_failed", form=raw)
    except staff.LoginThrottled as exc:
        response = _login(request, await _clinic(db, slug), 429, "login_throttled", form=raw)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return Redirect(f"/{signed.clinic.slug}/staff", status_code=303, headers=_PRIVATE,
                    cookies=[_cookie(settings, signed.clinic.slug, signed.token)])


@post("/{slug:str}/staff/logout", name="staff_logout", status_code=303)
async def logout(request: Request[Any, Any, Any], db: NamedDependency[Database],
                 settings: NamedDependency[Settings], slug: FromPath[str]) -> Redirect:
    clinic = await staff.sign_out(db, slug, request.cookies.get(staff.COOKIE))
    return Redirect(f"/{clinic.slug}/staff/login", status_code=303, headers=_PRIVATE,
                    cookies=[_cookie(settings, clinic.slug, "", max_age=0)])


@get("/{slug:str}/staff", name="staff_dashboard")
async def dashboard(request: Request[Any, Any, Any], db: NamedDependency[Database],
                    settings: NamedDependency[Settings], slug: FromPath[str]) -> Template | Redirect:
    q = request.query_params
    try:
        board = await staff.load_dashboard(db, settings, slug, request.cookies.get(staff.COOKIE),
                                           q.get("doctor"), q.get("day"))
    except staff.NotSignedIn:
        return Redirect(f"/{slug}/staff/login", status_code=303, headers=_PRIVATE)
    locale = request_locale(request, board.clinic.default_locale)
    response = page(request, "pages/staff_dashboard.html", locale, clinic=board.clinic,
                    board=board)
    response.headers.update(_PRIVATE)
    return response


def _login(request: Request[Any, Any, Any], clinic: Clinic, status: int = 200,
           error: str | None = None, fields: dict[str, str] | None = None,
           form: dict[str, str] | None = None) -> Template:
    response = page(request, "pages/staff_login.html", request_locale(request, clinic.default_locale),
                    status_code=status, clinic=clinic, error=error, fields=fields or {},
                    email=(form or {}).get("email", "").strip()[:254])
    response.headers.update(_PRIVATE)
    return response


async def _clinic(db: Database, slug: str) -> Clinic:
    async with db.transaction(Level.ANON) as conn:
        return await enter_clinic(conn, slug)


def _cookie(settings: Settings, slug: str, value: str, max_age: int | None = None) -> Cookie:
    # A browser-session cookie (the server enforces the idle and absolute limits), sent only
    # to its own clinic's staff pages: a browser signed in at two clinics holds two, signing
    # in or out at one never touches the other, and patient pages never see it.
    return Cookie(key=staff.COOKIE, value=value, path=f"/{slug}/staff", httponly=True, samesite="lax",
                  secure=settings.cookies_secure, max_age=max_age)
