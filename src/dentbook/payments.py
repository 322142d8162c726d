"""Payments: reserve first, then charge (G3), and the webhook that survives the real
world (G4). Stripe is reached only through the official library's StripeClient, pointed
at the local Stripe service when no key is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import stripe

from dentbook import booking, i18n
from dentbook.db import Database, Level, retry_deadlocks
from dentbook.errors import PaymentUnavailable, SlotTaken
from dentbook.jobs import GiveUp, Job
from dentbook.mail.wording import N_
from dentbook.settings import Settings
from dentbook.tenancy import ClinicDb

# A hold's return and cancel addresses (absolute), made by the web layer from route names.
Links = Callable[[UUID], tuple[str, str]]

log = logging.getLogger(__name__)

# Stripe event type -> what it means for the booking (see apply_payment_event).
EVENTS = {
    "checkout.session.completed": None,  # paid or processing, by payment_status
    "checkout.session.async_payment_succeeded": "paid",
    "checkout.session.async_payment_failed": "failed",
    "checkout.session.expired": "expired",
}
APPLY = "select outcome from dentbook.payment_event(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
REFUND_DUE = "select amount_minor, currency, payment_intent, reason from dentbook.refund_due(%s)"
COMPLETE_REFUND = "select dentbook.complete_refund(%s, %s)"
DEPOSIT = N_("Deposit")


class BadWebhook(ValueError):
    """Not a genuine, fresh Stripe event (bad signature, stale timestamp, not JSON)."""


@dataclass(frozen=True)
class Started:
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


async def reserve_and_checkout(clinic_db: ClinicDb, client: stripe.StripeClient,
                               settings: Settings, req: booking.BookingForm, client_ip: str | None,
                               locale: str, holder: bytes, links: Links) -> Started:
    """Hold the slot (one short transaction, committed), then open a Checkout Session for
    exactly that hold with no database connection checked out, then write its id back.

    Stripe may stall for many seconds; holding a connection meanwhile would drain the pool
    and turn one slow answer into a site-wide 503. If Stripe cannot open the session, the
    hold is released at once. `holder` identifies the browser (see `booking.hold`).
    """
    async def attempt() -> booking.Hold:
        return await booking.hold(clinic_db, req, client_ip, locale, holder, settings)

    # Two simultaneous inserts of overlapping holds can each wait for the other inside the
    # exclusion check; PostgreSQL then aborts one, which has not lost yet (the other may
    # still roll back): it asks again. A lost race costs no savepoint this way.
    try:
        hold = await retry_deadlocks(attempt, booking.HOLD_ATTEMPTS)
    except psycopg.errors.DeadlockDetected:
        raise SlotTaken() from None
    url = await _open_checkout(client, hold.stripe_session_id) if hold.reused else None
    if url is None:
        url = await _checkout(clinic_db, client, hold, req.email, locale, links)
    return Started(hold, url)


async def _open_checkout(client: stripe.StripeClient, session_id: str | None) -> str | None:
    """The Checkout page of a session that is still open, if there is one."""
    if not session_id:
        return None
    try:
        session = await client.v1.checkout.sessions.retrieve_async(session_id)
    except stripe.StripeError:
        return None
    return str(session.url) if session.status == "open" and session.url else None


async def _checkout(clinic_db: ClinicDb, client: stripe.StripeClient, hold: booking.Hold,
                    email: str, locale: str, links: Links) -> str:
    """Open the Checkout Session for a committed hold; release the hold if Stripe fails."""
    clinic = clinic_db.clinic
    success, cancel = links(hold.booking_id)
    when = i18n.format_datetime(hold.starts_at, clinic.zone, locale)
    deposit = i18n.translations(locale).gettext(DEPOSIT)
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {
            "currency": hold.currency, "unit_amount": hold.amount_minor,
            # What is paid for, without the treatment (health data): Stripe needs no more.
            "product_data": {"name": f"{clinic.name}: {deposit}",
                             "description": f"{hold.doctor_name}, {when}"}}}],
        "success_url": success,
        "cancel_url": cancel,
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
        async with clinic_db.transaction(Level.SERVICE) as conn:
            await booking.release(conn, hold.booking_id, "checkout could not be opened")
        raise PaymentUnavailable() from exc

    await retry_deadlocks(lambda: booking.attach_session(clinic_db, hold.booking_id, session.id))
    return str(session.url)


async def resume(clinic_db: ClinicDb, client: stripe.StripeClient, booking_id: UUID,
                 holder: bytes | None) -> str | None:
    """The open Checkout page of this browser's own hold, or None (not its hold, lapsed,
    or the session is over)."""
    async with clinic_db.transaction(Level.ANON) as conn:
        mine = next((h for h in await booking.own_holds(conn, holder) if h.id == booking_id), None)
    return await _open_checkout(client, mine.stripe_session_id) if mine else None


async def cancel(clinic_db: ClinicDb, client: stripe.StripeClient, booking_id: UUID) -> None:
    """The patient left Checkout and confirmed it: release the hold, expire its session."""
    async with clinic_db.transaction(Level.SERVICE) as conn:
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


async def handle_event(db: Database, settings: Settings, event: stripe.Event) -> str:
    """Apply one verified event; returns what happened (for logs and tests).

    Idempotent: `payment_event` records the event id in the same transaction as its effect,
    a guarded transition on the locked booking row, so replays, concurrent duplicates and
    distinct events about the same session all settle to one outcome. Money that is not
    ours to keep leaves a refund and its job, made after the commit (see `refund_job`).
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
    amount = session.get("amount_total")
    currency = session.get("currency")
    params = (event.id, event.type, booking_id, session.get("id"), kind, payment_intent,
              amount if isinstance(amount, int) else None,
              str(currency).lower() if isinstance(currency, str) else None,
              timedelta(hours=settings.processing_hold_hours))

    async def apply() -> str:
        async with db.transaction(Level.SERVICE, tenant) as conn:
            row = await (await conn.execute(APPLY, params)).fetchone()
        return str(row[0]) if row else "noop"

    outcome = await retry_deadlocks(apply)
    if outcome == "unknown":
        # Another system on the same Stripe account, or a clinic since deleted: nothing of
        # ours to change, and a 5xx would only make Stripe repeat it for days.
        log.warning("event for a session we do not know", extra={
            "event": event.id, "type": event.type, "booking": str(booking_id)})
    else:
        log.info("webhook applied", extra={"event": event.id, "type": event.type,
                                           "booking": str(booking_id), "outcome": outcome})
    return outcome


async def refund_job(db: Database, client: stripe.StripeClient, job: Job) -> bool:
    """Make a recorded refund through Stripe, of the amount recorded (a late cancellation's
    share, or the whole payment) (idempotency key per booking: once, ever).
    Whether it was made now (False: made already, by a runner that died before finishing)."""
    assert job.booking_id is not None
    async with db.transaction(Level.SERVICE, job.tenant_id) as conn:
        row = await (await conn.execute(REFUND_DUE, (job.booking_id,))).fetchone()
    if row is None:
        return False  # made already (a job claimed again after its runner died)
    amount, currency, payment_intent, reason = row
    try:
        refund = await client.v1.refunds.create_async(
            {"payment_intent": str(payment_intent), "amount": int(str(amount)),
             "reason": "requested_by_customer",
             "metadata": {"booking_id": str(job.booking_id), "tenant_id": str(job.tenant_id),
                          "why": str(reason)}},
            {"idempotency_key": f"dentbook-refund-{job.booking_id}"})
    except stripe.InvalidRequestError as exc:
        # Stripe refuses for good (e.g. refunded already from the Dashboard): a person must look.
        raise GiveUp(f"stripe refused the refund of {amount} {currency}: {exc.user_message}") from exc
    async with db.transaction(Level.SERVICE, job.tenant_id) as conn:
        await conn.execute(COMPLETE_REFUND, (job.booking_id, refund.id))
    log.info("refunded", extra={"booking": str(job.booking_id), "refund": refund.id,
                                "why": str(reason)})
    return True
