"""The Litestar app: Stripe's `/v1` API subset, the hosted page and `/_test/` controls."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from dentbook.stripe_local import checkout_page
from dentbook.stripe_local.config import LocalStripeConfig
from dentbook.stripe_local.errors import (
    StripeError,
    http_error_handler,
    invalid,
    json_response,
    stripe_error_handler,
)
from dentbook.stripe_local.forms import fingerprint, parse_form
from dentbook.stripe_local.service import LocalStripe, of
from dentbook.stripe_local.store import JSON

AnyRequest = Request[Any, Any, Any]
log = logging.getLogger(__name__)


def _masked(key: str) -> str:
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "***"


def authenticate(request: AnyRequest) -> LocalStripe:
    """Require the configured secret key as Bearer (or Basic username), as Stripe does."""
    svc = of(request)
    scheme, _, cred = request.headers.get("authorization", "").partition(" ")
    key = cred.strip()
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(key).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    elif scheme.lower() != "bearer":
        key = ""
    if not key:
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY').",
        )
    if not hmac.compare_digest(key.encode(), svc.config.api_key.encode()):
        raise StripeError(401, f"Invalid API Key provided: {_masked(key)}")
    return svc


async def _idempotent(
    request: AnyRequest, op: Callable[[LocalStripe, JSON], JSON]
) -> Response[bytes]:
    """Run a POST once per Idempotency-Key; see `idempotency` for twins and replays."""
    svc = authenticate(request)
    raw = await request.body()
    key = request.headers.get("idempotency-key")
    if not key:
        return json_response(op(svc, parse_form(raw)))
    if len(key) > 255:
        raise invalid("Idempotency-Key must be at most 255 characters.")
    stored, replayed = await svc.idempotency.run(
        key, request.url.path, fingerprint(raw),
        lambda: msgspec.json.encode(op(svc, parse_form(raw))))
    headers = {"Idempotency-Key": key, **({"Idempotent-Replayed": "true"} if replayed else {})}
    return json_response(stored.body, stored.status, headers)


def _query(request: AnyRequest) -> JSON:
    return parse_form(request.url.query or "")


def _expand(params: JSON) -> list[str]:
    value = params.get("expand") or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


@post("/v1/checkout/sessions")
async def create_session(request: AnyRequest) -> Response[bytes]:
    return await _idempotent(request, lambda svc, p: svc.create_session(p))


@get("/v1/checkout/sessions/{sid:str}")
async def retrieve_session(request: AnyRequest, sid: FromPath[str]) -> Response[bytes]:
    svc = authenticate(request)
    return json_response(svc.retrieve_session(sid, _expand(_query(request))))


@post("/v1/checkout/sessions/{sid:str}/expire")
async def expire_session(request: AnyRequest, sid: FromPath[str]) -> Response[bytes]:
    return await _idempotent(request, lambda svc, _: svc.expire(sid))


@get("/v1/payment_intents/{pid:str}")
async def retrieve_payment_intent(request: AnyRequest, pid: FromPath[str]) -> Response[bytes]:
    return json_response(dict(authenticate(request).store.payment_intent(pid)))


@post("/v1/refunds")
async def create_refund(request: AnyRequest) -> Response[bytes]:
    return await _idempotent(request, lambda svc, p: svc.refund(p))


@get("/v1/refunds")
async def list_refunds(request: AnyRequest) -> Response[bytes]:
    return json_response(authenticate(request).list_refunds(_query(request)))


@get("/_test/events")
async def list_events(request: AnyRequest) -> Response[bytes]:
    deliveries = authenticate(request).webhooks.deliveries.values()
    return json_response({"object": "list", "data": [d.summary() for d in deliveries]})


@post("/_test/events/{eid:str}/resend")
async def resend_event(request: AnyRequest, eid: FromPath[str]) -> Response[bytes]:
    delivery = authenticate(request).webhooks.resend(eid)
    if delivery is None:
        raise StripeError(404, f"No such event: '{eid}'", param="id", code="resource_missing")
    return json_response(delivery.summary())


@post("/_test/sessions/{sid:str}/pay")
async def test_pay(request: AnyRequest, sid: FromPath[str]) -> Response[bytes]:
    svc = authenticate(request)
    form = parse_form(await request.body())
    force = str(form.get("force", "")).lower() in ("1", "true", "yes")
    method = str(form.get("method") or "card")
    return json_response(svc.pay(sid, method, str(form.get("card") or ""),
                                 blik_code=str(form.get("blik_code") or ""), force=force))


@post("/_test/sessions/{sid:str}/expire_now")
async def test_expire_now(request: AnyRequest, sid: FromPath[str]) -> Response[bytes]:
    return json_response(authenticate(request).expire(sid))


def _idempotency_state(svc: LocalStripe) -> JSON:
    idem = svc.idempotency
    return {"held": idem.held, "in_progress": sorted(idem.in_progress),
            "conflicts": idem.conflicts}


@get("/_test/idempotency")
async def idempotency_state(request: AnyRequest) -> Response[bytes]:
    return json_response(_idempotency_state(authenticate(request)))


@post("/_test/idempotency/hold")
async def idempotency_hold(request: AnyRequest) -> Response[bytes]:
    """Keep keyed requests in progress until released, so a twin meets a running twin."""
    svc = authenticate(request)
    svc.idempotency.hold()
    return json_response(_idempotency_state(svc))


@post("/_test/idempotency/release")
async def idempotency_release(request: AnyRequest) -> Response[bytes]:
    svc = authenticate(request)
    svc.idempotency.release()
    return json_response(_idempotency_state(svc))


@get("/_local/identity")
async def identity(request: AnyRequest) -> Response[bytes]:
    """Unauthenticated on purpose: the caller checks who answers before sending its key."""
    nonce = of(request).config.identity
    return json_response({"object": "local_stripe_identity", "nonce": nonce})


def _crash_handler(request: AnyRequest, exc: Exception) -> Response[bytes]:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    err = StripeError(500, f"Local Stripe internal error: {type(exc).__name__}", type_="api_error")
    return json_response(err.body(), 500)


def create_app(config: LocalStripeConfig) -> Litestar:
    """A fresh service with its own empty store; start it with any ASGI server."""
    svc = LocalStripe(config)
    return Litestar(
        route_handlers=[
            create_session, retrieve_session, expire_session, retrieve_payment_intent,
            create_refund, list_refunds, list_events, resend_event, test_pay, test_expire_now,
            idempotency_state, idempotency_hold, idempotency_release, identity,
            *checkout_page.handlers,
        ],
        state=State({"local_stripe": svc}),
        on_startup=[svc.start],
        on_shutdown=[svc.stop],
        exception_handlers={
            StripeError: stripe_error_handler,
            HTTPException: http_error_handler,
            Exception: _crash_handler,
        },
        openapi_config=None,
        # The host process (dentbook, its tests) owns logging; don't reconfigure it.
        logging_config=None,
    )
