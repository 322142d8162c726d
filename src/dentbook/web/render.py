"""Rendering pages and fragments in the request's language."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from litestar import Litestar, Request
from litestar.response import Template

from dentbook import i18n
from dentbook.mail.wording import policy_sentence
from dentbook.resources import TEMPLATES_DIR
from dentbook.web import urls
from dentbook.web.messages import MESSAGES
from dentbook.web.urls import Here, Urls

# Staff pages and a patient's own pages show names, addresses and one-time links: no cache
# keeps them.
PRIVATE = {"Cache-Control": "no-store"}


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship with the code: never stat their files again on each render.
        auto_reload=False,
    )
    env.filters.update(
        day=_with_locale(i18n.format_day),
        short_day=_with_locale(i18n.format_short_day),
        long_date=_with_locale(i18n.format_date_long),
        money=_money,
        iso_utc=_iso_utc,
    )
    env.globals.update(time=_time, datetime=_datetime, messages=MESSAGES, policy=_policy)
    return env


def attach(app: Litestar, env: Environment) -> Urls:
    """Give `app` its addresses by route name, for handlers (`app.state.urls`) and for
    templates (`url(...)`), once its routes are known."""
    routes = Urls(app)
    app.state.urls = routes
    env.globals["url"] = routes
    return routes


def request_locale(request: Request[Any, Any, Any], default: str = "pl") -> str:
    return i18n.choose(request.query_params.get("lang"), request.cookies.get(i18n.COOKIE),
                       request.headers.get("accept-language"), default)


def page(request: Request[Any, Any, Any], name: str, locale: str, status_code: int = 200,
         here: Here | None = None, **context: Any) -> Template:
    """A template response in `locale`; the gettext callables are bound per request.

    `here` is the page's own address (for its language links); by default the route that
    answered, or the directory for an error."""
    t = i18n.translations(locale)
    response = Template(
        template_name=name,
        status_code=status_code,
        context={
            "locale": locale,
            "gettext": _formatting(t.gettext),
            "ngettext": t.ngettext,
            "_": _formatting(t.gettext),
            "here": here or urls.here(request, request.app.state.urls, status_code),
            **context,
        },
        headers={"Content-Language": locale, "Vary": "Accept-Language, Cookie, HX-Request"},
    )
    asked = request.query_params.get("lang")
    if asked in i18n.LOCALES and request.cookies.get(i18n.COOKIE) != asked:
        # Remember an explicit choice of language for the next pages.
        response.set_cookie(i18n.COOKIE, asked, max_age=365 * 24 * 3600, path="/",
                            samesite="lax", httponly=True,
                            secure=request.url.scheme == "https")
    return response


def render_fragment(env: Environment, name: str, locale: str, **context: Any) -> str:
    """Render a template outside a request (for SSE messages), in `locale`."""
    t = i18n.translations(locale)
    return env.get_template(name).render(
        locale=locale, gettext=_formatting(t.gettext), ngettext=t.ngettext,
        _=_formatting(t.gettext), **context)


def _formatting(gettext: Any) -> Any:
    """gettext that also fills `%(name)s` placeholders: `_("Hi %(n)s", n=name)`."""
    def translate(message: str, **variables: Any) -> str:
        text = str(gettext(message))
        return text % variables if variables else text
    return translate


def _with_locale(fmt: Any) -> Any:
    @pass_context
    def apply(ctx: Context, value: Any) -> str:
        return str(fmt(value, ctx["locale"]))
    return apply


@pass_context
def _policy(ctx: Context, clinic: Any, deposit_minor: int) -> str:
    """The clinic's cancellation policy in one sentence, as the e-mails say it."""
    return policy_sentence(ctx["locale"], clinic.cancel_window_hours, clinic.late_refund_percent,
                           deposit_minor)


def _iso_utc(instant: datetime) -> str:
    """An instant as the HTML hooks carry it: ISO 8601 in UTC, to the second."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pass_context
def _money(ctx: Context, minor: int, currency: str) -> str:
    return i18n.format_money(minor, currency, ctx["locale"])


@pass_context
def _time(ctx: Context, instant: Any, zone: Any) -> str:
    return i18n.format_time(instant, zone, ctx["locale"])


@pass_context
def _datetime(ctx: Context, instant: Any, zone: Any) -> str:
    return i18n.format_datetime(instant, zone, ctx["locale"])
