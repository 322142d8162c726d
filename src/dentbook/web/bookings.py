"""Booking over HTTP: the form's POST, Checkout's return and cancel addresses."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import stripe
from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from dentbook import booking, payments
from dentbook.db import Database, Level
from dentbook.errors import (
    DomainError,
    Invalid,
    PaymentUnavailable,
    SlotNotOffered,
    SlotTaken,
    TooManyHolds,
)
from dentbook.settings import Settings
from dentbook.tenancy import enter_clinic
from dentbook.web.params import optional_uuid
from dentbook.web.public import render_clinic
from dentbook.web.render import page, request_locale

# failure -> (status, data-error code)
_ANSWERS: dict[type[DomainError], tuple[int, str]] = {
    Invalid: (422, "invalid"),
    SlotNotOffered: (422, "slot_not_offered"),
    SlotTaken: (409, "slot_taken"),
    TooManyHolds: (429, "too_many_holds"),
    PaymentUnavailable: (503, "payment_unavailable"),
}


@post("/{slug:str}/bookings", name="book", status_code=303)
async def book(request: Request[Any, Any, Any], db: NamedDependency[Database],
               settings: NamedDependency[Settings],
               stripe_client: NamedDependency[stripe.StripeClient],
               slug: FromPath[str]) -> Redirect | Template:
    raw = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    locale = request_locale(request)
    token = booking.holder_token(request.cookies.get(booking.HOLDER_COOKIE))
    try:
        req = booking.parse_form(raw)
        started = await payments.reserve_and_checkout(
            db, stripe_client, settings, slug, req, request.client.host if request.client else None,
            locale, booking.holder_digest(token))
    except tuple(_ANSWERS) as exc:
        status, code = _ANSWERS[type(exc)]
        fields = exc.fields if isinstance(exc, Invalid) else {}
        return await render_clinic(
            request, db, settings, slug, status_code=status, error=code, fields=fields,
            form=raw, doctor=_id(raw.get("doctor_id")), visit=_id(raw.get("visit_type_id")),
            start=raw.get("start"))
    return Redirect(started.checkout_url, status_code=303, cookies=[Cookie(
        key=booking.HOLDER_COOKIE, value=token, path="/", httponly=True, samesite="lax",
        secure=settings.cookies_secure, max_age=7 * 24 * 3600)])


@get("/{slug:str}/bookings/{booking_id:str}/return", name="booking_return")
async def booking_return(request: Request[Any, Any, Any], db: NamedDependency[Database],
                         slug: FromPath[str], booking_id: FromPath[str]) -> Template:
    return await _status_page(request, db, slug, _required_id(booking_id))


@get("/{slug:str}/bookings/{booking_id:str}/cancelled", name="booking_cancelled")
async def booking_cancelled(request: Request[Any, Any, Any], db: NamedDependency[Database],
                            slug: FromPath[str], booking_id: FromPath[str]) -> Template:
    """Checkout's cancel address: asks before giving the time back. A GET changes nothing,
    so a link preview or a prefetch cannot release anyone's hold."""
    return await _status_page(request, db, slug, _required_id(booking_id), leaving=True)


@post("/{slug:str}/bookings/{booking_id:str}/release", name="booking_release", status_code=303)
async def booking_release(db: NamedDependency[Database],
                          stripe_client: NamedDependency[stripe.StripeClient],
                          slug: FromPath[str], booking_id: FromPath[str]) -> Redirect:
    bid = _required_id(booking_id)
    await payments.cancel(db, stripe_client, slug, bid)
    return Redirect(f"/{slug}/bookings/{bid}/return", status_code=303)


@post("/{slug:str}/bookings/{booking_id:str}/resume", name="booking_resume", status_code=303)
async def booking_resume(request: Request[Any, Any, Any], db: NamedDependency[Database],
                         stripe_client: NamedDependency[stripe.StripeClient],
                         slug: FromPath[str], booking_id: FromPath[str]) -> Redirect | Template:
    """Back to Checkout for this browser's own hold; anyone else's answer is the status page."""
    bid = _required_id(booking_id)
    url = await payments.resume(db, stripe_client, slug, bid,
                                booking.holder_hash(request.cookies.get(booking.HOLDER_COOKIE)))
    if url is None:
        return await _status_page(request, db, slug, bid, status_code=409)
    return Redirect(url, status_code=303)


async def _status_page(request: Request[Any, Any, Any], db: Database, slug: str, bid: UUID,
                       leaving: bool = False, status_code: int = 200) -> Template:
    async with db.transaction(Level.ANON) as conn:
        clinic = await enter_clinic(conn, slug)
        view = await booking.view(conn, bid)
    locale = request_locale(request, clinic.default_locale)
    return page(request, "pages/booking_status.html", locale, status_code=status_code,
                clinic=clinic, booking=view, leaving=leaving, resumable=status_code != 409)


def _id(value: str | None) -> UUID | None:
    try:
        return optional_uuid(value, "id")
    except DomainError:
        return None


def _required_id(value: str) -> UUID:
    found = optional_uuid(value, "booking")
    if found is None:
        raise Invalid({"booking": "invalid"})
    return found
