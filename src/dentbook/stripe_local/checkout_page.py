"""The hosted test checkout page at `/pay/{id}`: plain HTML forms, no JavaScript needed.

It shows what is being paid for (each line item's product name and description) and the
amount as Babel formats it, in the session's language, and offers the methods a Polish
Checkout offers for the session's currency (see `methods`).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from dentbook.i18n import format_money
from dentbook.resources import TEMPLATES_DIR
from dentbook.stripe_local import texts
from dentbook.stripe_local.errors import StripeError
from dentbook.stripe_local.forms import parse_form
from dentbook.stripe_local.methods import CARD_DECLINED, CARD_OK
from dentbook.stripe_local.service import of
from dentbook.stripe_local.store import JSON, now

# Stripe error code: (mark on the page for tests, the field to blame, if any).
_ERRORS = {
    "card_declined": ("card_declined", "card"),
    "invalid_number": ("invalid_card", "card"),
    "payment_method_provider_decline": ("blik_declined", "blik_code"),
    "payment_method_invalid_parameter": ("invalid_blik", "blik_code"),
    "checkout_session_expired": ("session_expired", None),
    "checkout_session_complete": ("session_complete", None),
}
_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined,
    trim_blocks=True, lstrip_blocks=True,
)


def _grouped(card: str) -> str:
    return " ".join(card[i:i + 4] for i in range(0, len(card), 4))


def _page(request: Request[Any, Any, Any], sid: str, status: int,
          error: StripeError | None = None, form: JSON | None = None) -> Response[str]:
    svc = of(request)
    session: JSON | None = svc.store.sessions.get(sid)
    lang = texts.language(session["locale"] if session else None,
                          request.headers.get("accept-language"))
    lines = [
        {"name": it["description"], "quantity": it["quantity"],
         "description": svc.store.product_of(it)["description"],
         "amount": format_money(it["amount_total"], it["currency"], lang)}
        for it in svc.store.line_items.get(sid, [])
    ]
    mark, field = _ERRORS.get(error.code or "", ("invalid_request", None)) if error else (
        None, None)
    html = _env.get_template("stripe_local/checkout.html").render(
        lang=lang,
        tr=texts.translator(lang),
        session=session,
        lines=lines,
        total=format_money(session["amount_total"], session["currency"], lang) if session
        else "",
        error_mark=mark,
        error_field=field,
        # What the payer typed, shown again after a refusal (never the CVC).
        form={k: str((form or {}).get(k) or "") for k in ("method", "card", "exp", "blik_code")},
        card_ok=_grouped(CARD_OK),
        card_declined=_grouped(CARD_DECLINED),
        sid=sid,
    )
    return Response(html, status_code=status, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store", "Content-Language": lang,
                             "Vary": "Accept-Language"})


@get("/pay/{sid:str}")
async def show(request: Request[Any, Any, Any], sid: FromPath[str]) -> Response[str]:
    svc = of(request)
    session = svc.store.sessions.get(sid)
    if session is None:
        return _page(request, sid, 404)
    if session["status"] == "open" and session["expires_at"] <= now():
        svc.expire(sid)
    return _page(request, sid, 200 if session["status"] == "open" else 410)


@post("/pay/{sid:str}")
async def pay(request: Request[Any, Any, Any], sid: FromPath[str]) -> Response[str] | Redirect:
    svc = of(request)
    form = parse_form(await request.body())
    if sid not in svc.store.sessions:
        return _page(request, sid, 404)
    try:
        session = svc.pay(sid, str(form.get("method") or "card"), str(form.get("card") or ""),
                          blik_code=str(form.get("blik_code") or ""))
    except StripeError as exc:
        return _page(request, sid, exc.status, exc, form)
    success = session["success_url"]
    if not success:
        return _page(request, sid, 200)
    return Redirect(success.replace("{CHECKOUT_SESSION_ID}", sid), status_code=303)


handlers = [show, pay]
