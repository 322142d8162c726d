"""Payments: reserve first, then charge (G3), and the webhook that survives the real
world (G4). Stripe is reached only through the official library's StripeClient, pointed
at the local Stripe service when no key is configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import stripe

from dentbook import booking
from dentbook.db import Conn, Database, Level, begin, retry_deadlocks
from dentbook.errors import NotFound, PaymentUnavailable
from dentbook.settings import Settings
from dentbook.tenancy import Clinic, VisitType, enter_clinic, list_visit_types

log = logging.getLogger(__name__)

# Stripe event type -> what it means for the booking (see apply_payment_event).
EVENTS = {
    "checkout.session.completed": None,  # paid or processing, by payment_status
    "checkout.session.async_payment_succeeded": "paid",
    "checkout.session.async_payment_failed": "failed",
    "checkout.session.expired": "expired",
}
RECORD = "select dentbook.record_webhook_event(%s, %s)"
APPLY = "select * from dentbook.apply_payment_event(%s, %s, %s, %s, %s, %s)"
COMPLETE_REFUND = "select dentbook.complete_refund(%s, %s)"


class BadWebhook(ValueError):
    """Not a genuine, fresh Stripe event (bad signature, stale timestamp, not JSON)."""


@dataclass(frozen=True)
class Started:
    clinic: Clinic
    hold: booking.Hold
    checkout_url: str


def make_client(settings: Settings) -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.stripe_secret_key,
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
        # StripeClient retries nothing by default; every POST below carries a stable
        # idempotency key, so a retry after a timeout can never charge or refund twice.
        max_network_retries=settings.stripe_max_network_retries,
        http_client=stripe.HTTPXClient(timeout=15),
    )


async def reserve_and_checkout(db: Database, client: stripe.StripeClient, settings: Settings,
                               slug: str, req: booking.BookingRequest, client_ip: str | None,
                               locale: str) -> Started:
    """Hold the slot (committed), then open a Checkout Session for exactly that hold.

    If Stripe cannot open the session, the hold is released at once.
    """
    async with db.connection() as conn:
        async with begin(conn, Level.SERVICE):
            clinic = await enter_clinic(conn, slug)
            visit = next((v for v in await list_visit_types(conn) if v.id == req.visit_type_id),
                         None)
            if visit is None:
                raise NotFound("visit type")
            hold = await booking.hold(conn, req, client_ip, locale, settings)
        url = await _existing_checkout(client, hold) if hold.reused else None
        if url is None:
            url = await _checkout(conn, client, settings, clinic, visit, hold, req.email, locale)
    return Started(clinic, hold, url)


async def _existing_checkout(client: stripe.StripeClient, hold: booking.Hold) -> str | None:
    """The open Checkout page of a hold the patient asked for again, if there is one."""
    if not hold.stripe_session_id:
        return None
    try:
        session = await client.v1.checkout.sessions.retrieve_async(hold.stripe_session_id)
    except stripe.StripeError:
        return None
    return str(session.url) if session.status == "open" and session.url else None


async def _checkout(conn: Conn, client: stripe.StripeClient, settings: Settings, clinic: Clinic,
                    visit: VisitType, hold: booking.Hold, email: str, locale: str) -> str:
    """Open the Checkout Session for a committed hold; release the hold if Stripe fails."""
    base = f"{settings.base_url}/{clinic.slug}/bookings/{hold.booking_id}"
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {
            "currency": hold.currency, "unit_amount": hold.amount_minor,
            "product_data": {"name": f"{clinic.name}: {visit.name(locale)}"}}}],
        "success_url": f"{base}/return?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{base}/cancelled",
        "expires_at": int(hold.hold_expires_at.timestamp()),
        "client_reference_id": str(hold.booking_id),
        "metadata": {"booking_id": str(hold.booking_id), "tenant_id": str(clinic.id)},
        "customer_email": email,
        "locale": locale,
    }
    try:
        session = await client.v1.checkout.sessions.create_async(
            params,  # type: ignore[arg-type]
            {"idempotency_key": f"dentbook-checkout-{hold.booking_id}"})
    except stripe.StripeError as exc:
        log.error("checkout session failed; releasing the hold",
                  extra={"booking": str(hold.booking_id), "error": str(exc)})
        async with begin(conn, Level.SERVICE, clinic.id):
            await booking.release(conn, hold.booking_id, "checkout could not be opened")
        raise PaymentUnavailable() from exc
    async def attach() -> bool:
        async with begin(conn, Level.SERVICE, clinic.id):
            return await booking.attach_session(conn, hold.booking_id, session.id)

    await retry_deadlocks(attach)
    return str(session.url)


async def cancel(db: Database, client: stripe.StripeClient, slug: str, booking_id: UUID) -> None:
    """The patient left Checkout: release the hold and expire its session."""
    async with db.transaction(Level.SERVICE) as conn:
        await enter_clinic(conn, slug)
        session_id = await booking.release(conn, booking_id, "patient cancelled checkout")
    if session_id:
        try:
            await client.v1.checkout.sessions.expire_async(
                session_id, options={"idempotency_key": f"dentbook-expire-{session_id}"})
        except stripe.StripeError as exc:
            # Already expired or completed: the webhook settles what happened.
            log.warning("could not expire session", extra={"session": session_id, "error": str(exc)})


def verify(client: stripe.StripeClient, payload: bytes, signature: str | None,
           secret: str) -> stripe.Event:
    try:
        return client.construct_event(payload, signature, secret, tolerance=300)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise BadWebhook(str(exc)) from None


async def handle_event(db: Database, client: stripe.StripeClient, settings: Settings,
                       event: stripe.Event) -> str:
    """Apply one verified event; returns what happened (for logs and tests).

    Idempotent: the event id is recorded in the same transaction as its effect, and the
    effect is a guarded transition on the locked booking row, so replays, concurrent
    duplicates and distinct events about the same session all settle to one outcome.
    """
    if event.type not in EVENTS:
        return "ignored"
    session: dict[str, Any] = event.data.object.to_dict()
    kind = EVENTS[event.type]
    if kind is None:
        paid = session.get("payment_status") in ("paid", "no_payment_required")
        kind = "paid" if paid else "processing"
    metadata = session.get("metadata") or {}
    try:
        booking_id = UUID(str(session.get("client_reference_id") or metadata.get("booking_id")))
        tenant = UUID(str(metadata.get("tenant_id")))
    except ValueError:
        log.warning("event names no booking", extra={"event": event.id, "type": event.type})
        return "ignored"
    payment_intent = session.get("payment_intent")
    if isinstance(payment_intent, dict):
        payment_intent = payment_intent.get("id")
    async with db.connection() as conn:
        return await retry_deadlocks(lambda: _apply(conn, client, settings, event, tenant,
                                                    booking_id, session, kind, payment_intent))


async def _apply(conn: Conn, client: stripe.StripeClient, settings: Settings, event: stripe.Event,
                 tenant: UUID, booking_id: UUID, session: dict[str, Any], kind: str,
                 payment_intent: str | None) -> str:
    async with begin(conn, Level.SERVICE, tenant):
        fresh = await (await conn.execute(RECORD, (event.id, event.type))).fetchone()
        if not fresh or not fresh[0]:
            return "replay"
        row = await (await conn.execute(APPLY, (
            booking_id, session.get("id"), kind, payment_intent, f"stripe {event.type}",
            timedelta(hours=settings.processing_hold_hours)))).fetchone()
        outcome = str(row[0]) if row else "noop"
        if outcome == "refund":
            assert row is not None
            refund = await client.v1.refunds.create_async(
                {"payment_intent": str(row[1]), "reason": "requested_by_customer",
                 "metadata": {"booking_id": str(booking_id), "tenant_id": str(tenant)}},
                {"idempotency_key": f"dentbook-refund-{booking_id}"})
            await conn.execute(COMPLETE_REFUND, (booking_id, refund.id))
            outcome = "refunded"
    log.info("webhook applied", extra={"event": event.id, "type": event.type,
                                       "booking": str(booking_id), "outcome": outcome})
    return outcome
