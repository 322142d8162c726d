"""The hosted test checkout page at `/pay/{id}`: plain HTML forms, no JavaScript needed."""

from __future__ import annotations

from typing import Any

from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from dentbook.resources import TEMPLATES_DIR
from dentbook.stripe_local.errors import StripeError
from dentbook.stripe_local.forms import parse_form
from dentbook.stripe_local.service import CARD_DECLINED, CARD_OK, LocalStripe, of
from dentbook.stripe_local.store import JSON, now

# Stripe's zero-decimal currencies: amounts are already in whole units.
_ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
_ERROR_MARKS = {
    "card_declined": "card_declined",
    "invalid_number": "invalid_card",
    "checkout_session_expired": "session_expired",
    "checkout_session_complete": "session_complete",
}
_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined,
    trim_blocks=True, lstrip_blocks=True,
)


def money(amount: int, currency: str) -> str:
    value = amount if currency in _ZERO_DECIMAL else amount / 100
    return format_currency(value, currency.upper(), locale="en")


def _grouped(card: str) -> str:
    return " ".join(card[i:i + 4] for i in range(0, len(card), 4))


def _page(svc: LocalStripe, sid: str, status: int, error: StripeError | None = None,
          method: str = "") -> Response[str]:
    session: JSON | None = svc.store.sessions.get(sid)
    lines = [
        {"name": it["description"], "quantity": it["quantity"],
         "amount": money(it["amount_total"], it["currency"])}
        for it in svc.store.line_items.get(sid, [])
    ]
    html = _env.get_template("stripe_local/checkout.html").render(
        session=session,
        lines=lines,
        total=money(session["amount_total"], session["currency"]) if session else "",
        error=error.message if error else None,
        error_mark=_ERROR_MARKS.get(error.code or "", "invalid_request") if error else None,
        method=method,
        card_ok=_grouped(CARD_OK),
        card_declined=_grouped(CARD_DECLINED),
        sid=sid,
    )
    return Response(html, status_code=status, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


@get("/pay/{sid:str}")
async def show(request: Request[Any, Any, Any], sid: FromPath[str]) -> Response[str]:
    svc = of(request)
    session = svc.store.sessions.get(sid)
    if session is None:
        return _page(svc, sid, 404)
    if session["status"] == "open" and session["expires_at"] <= now():
        svc.expire(sid)
    return _page(svc, sid, 200 if session["status"] == "open" else 410)


@post("/pay/{sid:str}")
async def pay(request: Request[Any, Any, Any], sid: FromPath[str]) -> Response[str] | Redirect:
    svc = of(request)
    form = parse_form(await request.body())
    method = str(form.get("method") or "card")
    if sid not in svc.store.sessions:
        return _page(svc, sid, 404)
    try:
        session = svc.pay(sid, method, str(form.get("card") or ""))
    except StripeError as exc:
        return _page(svc, sid, exc.status, exc, method)
    success = session["success_url"]
    if not success:
        return _page(svc, sid, 200)
    return Redirect(success.replace("{CHECKOUT_SESSION_ID}", sid), status_code=303)


handlers = [show, pay]
