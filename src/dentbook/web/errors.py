"""One place that turns failures into answers: a localized page, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.response import Redirect, Template

from dentbook.db import DatabaseUnavailable
from dentbook.errors import Invalid, NotFound
from dentbook.staff import Forbidden, MustEnrol, NotSignedIn
from dentbook.web.messages import MESSAGES
from dentbook.web.render import page, request_locale

log = logging.getLogger(__name__)


_BY_STATUS = {400: "invalid", 403: "forbidden", 404: "not_found", 405: "method",
              413: "too_large", 429: "too_many_requests", 503: "unavailable"}


def error_page(request: Request[Any, Any, Any], status: int, code: str) -> Template:
    return page(request, "pages/error.html", request_locale(request), status_code=status,
                status=status, code=code, message=MESSAGES[code])


def on_not_found(request: Request[Any, Any, Any], exc: NotFound) -> Template:
    return error_page(request, 404, exc.code if exc.code in MESSAGES else "not_found")


def on_not_signed_in(request: Request[Any, Any, Any],
                     exc: NotSignedIn) -> Redirect | Response[str]:
    """Anonymous, or another clinic's staff: pages go to this clinic's sign-in, streams
    (which a browser cannot follow to a form) get 401."""
    private = {"Cache-Control": "no-store"}
    if request.route_handler.opt.get("stream"):
        return Response("sign in first", status_code=401, media_type="text/plain", headers=private)
    login = request.app.state.urls("staff_login", slug=request.path_params["slug"])
    return Redirect(login, status_code=303, headers=private)


def on_must_enrol(request: Request[Any, Any, Any], exc: MustEnrol) -> Redirect | Response[str]:
    """An admin without the second factor the clinic requires: to the enrolment page first."""
    private = {"Cache-Control": "no-store"}
    if request.route_handler.opt.get("stream"):
        return Response("enrol a second factor first", status_code=401, media_type="text/plain",
                        headers=private)
    enrol = request.app.state.urls("staff_account_2fa", slug=request.path_params["slug"])
    return Redirect(enrol, status_code=303, headers=private)


def on_forbidden(request: Request[Any, Any, Any], exc: Forbidden) -> Template:
    response = error_page(request, 403, "forbidden")
    response.headers["Cache-Control"] = "no-store"
    return response


def on_invalid(request: Request[Any, Any, Any], exc: Invalid) -> Template:
    code = next(iter(exc.fields.values()), "invalid")
    return error_page(request, 400, code if code in MESSAGES else "invalid")


def on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Template:
    status = exc.status_code
    code = _BY_STATUS.get(status, "internal")
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        code = "csrf"
    if status >= 500:
        log.error("http error %s on %s: %s", status, request.url.path, exc.detail)
    response = error_page(request, status, code)
    response.headers.update(exc.headers or {})
    return response


def on_unavailable(request: Request[Any, Any, Any], exc: DatabaseUnavailable) -> Template:
    log.warning("database unavailable on %s: %s", request.url.path, exc)
    response = error_page(request, 503, "unavailable")
    response.headers["Retry-After"] = "5"
    return response


def on_crash(request: Request[Any, Any, Any], exc: Exception) -> Template:
    log.exception("unhandled error on %s", request.url.path)
    return error_page(request, 500, "internal")


HANDLERS: dict[type[Exception] | int, Any] = {
    NotFound: on_not_found,
    NotSignedIn: on_not_signed_in,
    MustEnrol: on_must_enrol,
    Forbidden: on_forbidden,
    Invalid: on_invalid,
    HTTPException: on_http,
    DatabaseUnavailable: on_unavailable,
    Exception: on_crash,
}
