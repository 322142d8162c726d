"""G3 and G4 end to end, through the real `stripe` library and the local Stripe service:
hold → Checkout → signed webhook → confirmed, and everything that can go wrong."""

from __future__ import annotations

from helpers import booking_row, csrf_token, form, free_starts, next_week, session_of, wait_for


def _book(client, clinic, visit="short", email="pat@example.com", index=0):
    doctor = clinic.doctors[0]
    start = free_starts(client, clinic.slug, doctor, clinic.visits[visit],
                        next_week(client, clinic.slug))[index]
    token = csrf_token(client, clinic.slug, doctor, clinic.visits[visit], start)
    return client.post(f"/{clinic.slug}/bookings",
                       data=form(doctor, clinic.visits[visit], start, token, email=email)), start


def test_hold_then_checkout_then_webhook_confirms(client, pg, clinic, stripe_local):
    r, start = _book(client, clinic)
    assert r.status_code == 303, r.text[-800:]
    session = session_of(r.headers["location"])
    row = booking_row(pg.owner, clinic.id, session)
    assert row["status"] == "pending" and row["stripe_session_id"] == session
    paid = stripe_local.pay(session)
    assert paid.status_code in (200, 303), paid.text
    confirmed = wait_for(lambda: booking_row(pg.owner, clinic.id, session)["status"] == "confirmed",
                         what="confirmation")
    assert confirmed
