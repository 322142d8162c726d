"""CSRF for the forms that must answer a bad token with the form itself.

Litestar's CSRF middleware refuses a POST with a stale token before any handler runs, so a
patient whose form expired (a session restored hours later, another tab that replaced the
cookie) loses everything typed. The booking and sign-in forms are exempt from the
middleware (`EXEMPT`) and check the token here instead, with the same cookie and the same
signed token format: on a mismatch the handler re-renders the form with the values kept, a
fresh token and 403. Every other POST still goes through the middleware.
"""

from __future__ import annotations

from hmac import compare_digest
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie
from litestar.middleware.csrf import generate_csrf_hash, generate_csrf_token
from litestar.utils.scope.state import ScopeState

EXEMPT = {"exclude_from_csrf": True}
_SECRET_LENGTH = 64  # litestar: token_hex(32)


def check(request: Request[Any, Any, Any], form: dict[str, str]) -> tuple[bool, Cookie | None]:
    """Whether the form's token matches the browser's CSRF cookie. Either way the request
    gets a valid token for forms it renders again; the cookie to set is returned when the
    browser had none that was valid."""
    config = request.app.csrf_config
    assert config is not None
    cookie = request.cookies.get(config.cookie_name)
    sent = request.headers.get(config.header_name) or form.get("_csrf_token")
    cookie_secret = _secret(cookie, config.secret)
    ok = cookie_secret is not None and sent is not None \
        and compare_digest(_secret(sent, config.secret) or "", cookie_secret)
    fresh = None
    if cookie is None or cookie_secret is None:
        cookie = generate_csrf_token(secret=config.secret)
        fresh = Cookie(key=config.cookie_name, value=cookie, path=config.cookie_path,
                       secure=config.cookie_secure, httponly=config.cookie_httponly,
                       samesite=config.cookie_samesite, domain=config.cookie_domain)
    ScopeState.from_scope(request.scope).csrf_token = cookie
    return ok, fresh


def _secret(token: str | None, key: str) -> str | None:
    if token is None or len(token) <= _SECRET_LENGTH:
        return None
    secret, digest = token[:_SECRET_LENGTH], token[_SECRET_LENGTH:]
    return secret if compare_digest(digest, generate_csrf_hash(token=secret, secret=key)) else None
