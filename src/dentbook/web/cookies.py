"""The staff side's cookies, and making every cookie Secure on HTTPS.

Staff cookies (the session, and the challenge of a sign-in waiting for its second factor) are
HttpOnly, SameSite=Lax, and sent only to their own clinic's staff pages: a browser signed in
at two clinics holds two sessions, signing in or out at one never touches the other, and
patient pages never see them. Every cookie the app sets (these, the CSRF token, the language,
the patient's holder cookie) gets `Secure` when the browser is on HTTPS, our own or a trusted
proxy's (`secure_on_https`), and always when the operator says so (DENTBOOK_SECURE_COOKIES).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import Cookie
from litestar.types import Message, Scope

from dentbook.tenancy import Clinic
from dentbook.web.clients import is_https, scope_is_https


def staff_cookie(request: Request[Any, Any, Any], clinic: Clinic, key: str, value: str,
                 max_age: int | None = None) -> Cookie:
    """A browser-session cookie (the server enforces its limits) for the clinic's staff pages."""
    return Cookie(key=key, value=value,
                  path=request.app.state.urls("staff_dashboard", slug=clinic.slug).rstrip("/"),
                  httponly=True, samesite="lax", max_age=max_age,
                  secure=request.app.state.settings.cookies_secure or is_https(request))


async def secure_on_https(message: Message, scope: Scope) -> None:
    """`before_send` hook: on HTTPS, every Set-Cookie without `Secure` gets it. Cookies set by
    middleware (Litestar's CSRF cookie) follow a static setting, which is wrong behind a TLS
    proxy when DENTBOOK_PUBLIC_URL is not https. Async, though it never waits: Litestar runs a
    plain function hook in a worker thread, for every message of every response."""
    if message["type"] != "http.response.start":
        return
    headers = message.get("headers") or []
    if not any(k.lower() == b"set-cookie" for k, _ in headers):
        return
    if not scope_is_https(scope, scope["app"].state.settings.trusted_proxies):
        return
    message["headers"] = [
        (k, v + b"; Secure") if k.lower() == b"set-cookie" and b"secure" not in v.lower() else (k, v)
        for k, v in headers]
