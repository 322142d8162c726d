"""Booking over HTTP: the form's POST, Checkout's return and cancel addresses, and the
patient's own hold (resume paying, or give the time back)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from dentbook import booking, payments, visits
from dentbook.db import Conn
from dentbook.errors import (
    DomainError,
    FormExpired,
    Invalid,
    PaymentUnavailable,
    SlotNotOffered,
    SlotTaken,
    TooManyHolds,
)
from dentbook.forms import parse, path_id
from dentbook.live.grids import Grids
from dentbook.tenancy import Clinic, ClinicDb
from dentbook.web import csrf
from dentbook.web.clients import client_address
from dentbook.web.forms import form_values
from dentbook.web.public import Choice, render_clinic
from dentbook.web.render import page
from dentbook.web.state import AppState
from dentbook.web.urls import Urls

# failure -> (status, data-error code)
_ANSWERS: dict[type[DomainError], tuple[int, str]] = {
    FormExpired: (403, "form_expired"),
    Invalid: (422, "invalid"),
    SlotNotOffered: (422, "slot_not_offered"),
    SlotTaken: (409, "slot_taken"),
    TooManyHolds: (429, "too_many_holds"),
    PaymentUnavailable: (503, "payment_unavailable"),
}
HOLDER_DAYS = 7


@post("/bookings", name="book", status_code=303, opt=csrf.EXEMPT)
async def book(request: Request[Any, Any, Any], state: AppState,
               clinic_db: NamedDependency[ClinicDb],
               locale: NamedDependency[str]) -> Redirect | Template:
    """Hold the slot, then send the patient to Checkout. Any failure answers with the same
    page, the patient's values kept and the error next to its field."""
    raw = await form_values(request)
    token = booking.holder_token(request.cookies.get(booking.HOLDER_COOKIE))
    urls: Urls = request.app.state.urls
    clinic = clinic_db.clinic

    def links(booking_id: UUID) -> tuple[str, str]:
        back = urls("booking_return", slug=clinic.slug, booking_id=booking_id)
        cancel = urls("booking_cancelled", slug=clinic.slug, booking_id=booking_id)
        # Stripe fills in {CHECKOUT_SESSION_ID} itself: it must reach Stripe unescaped.
        return (state.settings.base_url + back + "?session_id={CHECKOUT_SESSION_ID}",
                state.settings.base_url + cancel)

    token_ok, fresh_cookie = csrf.check(request, raw)
    try:
        if not token_ok:
            raise FormExpired()
        req = parse(booking.BookingForm, raw)
        started = await payments.reserve_and_checkout(
            clinic_db, state.stripe_client, state.settings, req, client_address(request), locale,
            booking.holder_digest(token), links)
    except tuple(_ANSWERS) as exc:
        again = await _form_again(request, clinic_db, state.grids, locale, raw, exc)
        if fresh_cookie is not None:
            again.cookies.append(fresh_cookie)
        return again
    if not started.hold.reused:  # committed, and on its way to Checkout
        request.app.state.metrics.holds.inc()
    return Redirect(started.checkout_url, status_code=303, cookies=[Cookie(
        key=booking.HOLDER_COOKIE, value=token, path="/", httponly=True, samesite="lax",
        secure=state.settings.cookies_secure, max_age=HOLDER_DAYS * 24 * 3600)])


async def _form_again(request: Request[Any, Any, Any], clinic_db: ClinicDb, grids: Grids,
                      locale: str, raw: dict[str, str], exc: DomainError) -> Template:
    status, code = _ANSWERS[type(exc)]
    fields = exc.fields if isinstance(exc, Invalid) else {}
    try:
        choice = parse(Choice, {"doctor": raw.get("doctor_id"), "visit": raw.get("visit_type_id"),
                                "start": raw.get("start")})
    except DomainError:
        choice = Choice()
    # The shared grid: a crowd losing a race costs no reads and no render of the week.
    clinic = clinic_db.clinic
    if isinstance(exc, PaymentUnavailable) and choice.doctor is not None:
        # Its hold was just given back: this process must not show it taken while the
        # notification is on its way, or the patient would read "taken", not "try again".
        grids.changed(clinic.id, choice.doctor)
    grid = await grids.get(clinic, choice.doctor, choice.visit, choice.week_of(clinic), locale)
    answer = render_clinic(request, clinic, locale, grid, choice.start, [], status_code=status,
                           error=code, fields=fields, form=raw, taken=isinstance(exc, SlotTaken))
    assert isinstance(answer, Template)
    return answer


@get("/bookings/{booking_id:str}/return", name="booking_return")
async def booking_return(request: Request[Any, Any, Any], state: AppState,
                         clinic: NamedDependency[Clinic],
                         service_tx: NamedDependency[Conn], locale: NamedDependency[str],
                         booking_id: FromPath[str]) -> Template:
    """Checkout's success address: the outcome (live while the payment is processing), and
    once confirmed the reference and the patient's own link."""
    view, token = await visits.outcome(service_tx, state.settings.secret_key, path_id(booking_id))
    return _status_page(request, clinic, locale, view, visit_token=token)


@get("/bookings/{booking_id:str}/cancelled", name="booking_cancelled")
async def booking_cancelled(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                            anon_tx: NamedDependency[Conn], locale: NamedDependency[str],
                            booking_id: FromPath[str]) -> Template:
    """Checkout's cancel address: asks before giving the time back. A GET changes nothing,
    so a link preview or a prefetch cannot release anyone's hold."""
    return _status_page(request, clinic, locale, await booking.view(anon_tx, path_id(booking_id)),
                        leaving=True)


@post("/bookings/{booking_id:str}/release", name="booking_release", status_code=303)
async def booking_release(request: Request[Any, Any, Any], state: AppState,
                          clinic_db: NamedDependency[ClinicDb],
                          booking_id: FromPath[str]) -> Redirect:
    found = path_id(booking_id)
    await payments.cancel(clinic_db, state.stripe_client, found)
    return Redirect(request.app.state.urls("booking_return", slug=clinic_db.clinic.slug,
                                           booking_id=found), status_code=303)


@post("/bookings/{booking_id:str}/resume", name="booking_resume", status_code=303)
async def booking_resume(request: Request[Any, Any, Any], state: AppState,
                         clinic_db: NamedDependency[ClinicDb],
                         locale: NamedDependency[str],
                         booking_id: FromPath[str]) -> Redirect | Template:
    """Back to Checkout for this browser's own hold; anyone else's answer is the status page."""
    found = path_id(booking_id)
    url = await payments.resume(clinic_db, state.stripe_client, found,
                                booking.holder_hash(request.cookies.get(booking.HOLDER_COOKIE)))
    if url is not None:
        return Redirect(url, status_code=303)
    view = await clinic_db.read(lambda conn: booking.view(conn, found))
    return _status_page(request, clinic_db.clinic, locale, view, status_code=409)


def _status_page(request: Request[Any, Any, Any], clinic: Clinic, locale: str,
                 view: booking.BookingView, leaving: bool = False,
                 status_code: int = 200, visit_token: str | None = None) -> Template:
    return page(request, "pages/booking_status.html", locale, status_code=status_code,
                clinic=clinic, booking=view, leaving=leaving, resumable=status_code != 409,
                visit_token=visit_token)
