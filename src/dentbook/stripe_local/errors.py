"""Stripe-shaped error responses, so the `stripe` library raises its usual exceptions."""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException


class StripeError(Exception):
    """An API failure rendered as Stripe's `{"error": {...}}` body with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        should_retry: bool | None = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.extra = extra or {}
        # Sent as `Stripe-Should-Retry`; None sends no advice, so the client's own rules decide.
        self.should_retry = should_retry

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.param is not None:
            err["param"] = self.param
        if self.code is not None:
            err["code"] = self.code
        err.update(self.extra)
        return {"error": err}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """A 400 `invalid_request_error`, Stripe's answer to bad parameters."""
    return StripeError(400, message, param=param, code=code)


def missing(kind: str, ident: str, param: str = "id") -> StripeError:
    """A 404 for an object that does not exist, worded like Stripe's."""
    return StripeError(
        404, f"No such {kind}: '{ident}'", param=param, code="resource_missing"
    )


def request_id() -> str:
    return "req_" + secrets.token_hex(7)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    """Encode `body` as JSON (bytes pass as already encoded) with Stripe's usual headers."""
    return Response(
        content=body if isinstance(body, bytes) else msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers={"Request-Id": request_id(), **(headers or {})},
    )


def stripe_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, StripeError)
    headers = {} if exc.should_retry is None else {
        "Stripe-Should-Retry": "true" if exc.should_retry else "false"}
    return json_response(exc.body(), exc.status, headers)


def http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Unknown paths and methods answer like Stripe's, not with Litestar's default body."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405):
        msg = (
            f"Unrecognized request URL ({request.method}: {request.url.path}). "
            "This is the local Stripe test service; see dentbook.stripe_local for what it serves."
        )
        return json_response(StripeError(404, msg).body(), 404)
    err = StripeError(exc.status_code, str(exc.detail), type_="invalid_request_error")
    return json_response(err.body(), exc.status_code)
