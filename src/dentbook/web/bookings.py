"""Booking over HTTP: the form's POST, Checkout's return and cancel addresses."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import stripe
from litestar import Request, get, post
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
    try:
        req = booking.parse_form(raw)
        started = await payments.reserve_and_checkout(
            db, stripe_client, settings, slug, req, request.client.host if request.client else None,
            locale)
    except tuple(_ANSWERS) as exc:
        status, code = _ANSWERS[type(exc)]
        fields = exc.fields if isinstance(exc, Invalid) else {}
        return await render_clinic(
            request, db, settings, slug, status_code=status, error=code, fields=fields,
            form=raw, doctor=_id(raw.get("doctor_id")), visit=_id(raw.get("visit_type_id")),
            start=raw.get("start"))
    return Redirect(started.checkout_url, status_code=303)


@get("/{slug:str}/bookings/{booking_id:str}/return", name="booking_return")
async def booking_return(request: Request[Any, Any, Any], db: NamedDependency[Database],
                         slug: FromPath[str], booking_id: FromPath[str]) -> Template:
    async with db.transaction(Level.ANON) as conn:
        clinic = await enter_clinic(conn, slug)
        view = await booking.view(conn, _required_id(booking_id))
    locale = request_locale(request, clinic.default_locale)
    return page(request, "pages/booking_status.html", locale, clinic=clinic, booking=view)


@get("/{slug:str}/bookings/{booking_id:str}/cancelled", name="booking_cancelled")
async def booking_cancelled(request: Request[Any, Any, Any], db: NamedDependency[Database],
                            stripe_client: NamedDependency[stripe.StripeClient],
                            slug: FromPath[str], booking_id: FromPath[str]) -> Template:
    bid = _required_id(booking_id)
    await payments.cancel(db, stripe_client, slug, bid)
    async with db.transaction(Level.ANON) as conn:
        clinic = await enter_clinic(conn, slug)
        view = await booking.view(conn, bid)
    locale = request_locale(request, clinic.default_locale)
    return page(request, "pages/booking_status.html", locale, clinic=clinic, booking=view)


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
