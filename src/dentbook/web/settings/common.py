"""What every settings page shares: answering with a page that no cache keeps, and going
back to a page after a change."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Redirect, Template

from dentbook.web.render import PRIVATE, page


def settings_page(request: Request[Any, Any, Any], name: str, locale: str, status: int = 200,
                  **context: Any) -> Template:
    """A settings page; `fields` (errors by field), `values` (what the form shows) and
    `error` (a page-level failure) default to none."""
    context.setdefault("fields", {})
    context.setdefault("values", {})
    context.setdefault("error", None)
    context.setdefault("saved", request.query_params.get("saved") == "1" and status == 200)
    response = page(request, f"pages/settings/{name}.html", locale, status_code=status, **context)
    response.headers.update(PRIVATE)
    return response


def back_to(request: Request[Any, Any, Any], name: str, **values: Any) -> Redirect:
    """303 to a settings page, saying the change was saved."""
    return Redirect(request.app.state.urls(name, saved="1", **values), status_code=303,
                    headers=PRIVATE)


def absolute(request: Request[Any, Any, Any], path: str) -> str:
    """A link to give out (an invitation, a calendar feed): the public address first."""
    return str(request.app.state.settings.base_url) + path
