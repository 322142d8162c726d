"""The webhook endpoint against spoofs, stale and malformed deliveries, unknown events,
and a database outage (5xx, so Stripe retries)."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from psycopg.conninfo import make_conninfo

from helpers import (
    STRIPE_KEY,
    WEBHOOK_SECRET,
    Server,
    app_settings,
    book,
    booking_row,
    owner_sql,
    session_of,
    stripe_signature,
)


def _signed(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict[str, str]:
    return stripe_signature(payload, secret, at)


def _event(kind: str = "checkout.session.completed", **session) -> bytes:
    obj = {"id": f"cs_test_{uuid.uuid4().hex}", "object": "checkout.session",
           "payment_status": "paid", "client_reference_id": str(uuid.uuid4()),
           "metadata": {"booking_id": str(uuid.uuid4()), "tenant_id": str(uuid.uuid4())},
           "payment_intent": "pi_test_x", **session}
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
                       "created": int(time.time()), "livemode": False, "api_version": "2025-09-30.clover",
                       "data": {"object": obj}}).encode()


def test_forged_signature_is_400(client):
    body = _event()
    r = client.post("/webhooks/stripe", content=body, headers=_signed(body, secret="whsec_wrong"))
    assert r.status_code == 400


def test_missing_signature_is_400(client):
    r = client.post("/webhooks/stripe", content=_event(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_stale_timestamp_is_400(client):
    body = _event()
    r = client.post("/webhooks/stripe", content=body, headers=_signed(body, at=int(time.time()) - 301))
    assert r.status_code == 400


def test_tampered_body_is_400(client):
    body = _event()
    headers = _signed(body)
    r = client.post("/webhooks/stripe", content=body.replace(b"paid", b"PAID"), headers=headers)
    assert r.status_code == 400


def test_malformed_json_with_a_valid_signature_is_400(client):
    body = b'{"id": "evt_1", "type": '
    assert client.post("/webhooks/stripe", content=body, headers=_signed(body)).status_code == 400


def test_unknown_event_type_is_200(client):
    body = _event("customer.created")
    r = client.post("/webhooks/stripe", content=body, headers=_signed(body))
    assert r.status_code == 200 and r.json() == {"outcome": "ignored"}


def test_event_for_an_unknown_booking_changes_nothing(client, pg, clinic):
    body = _event(metadata={"booking_id": str(uuid.uuid4()), "tenant_id": str(clinic.id)})
    r = client.post("/webhooks/stripe", content=body, headers=_signed(body))
    assert r.status_code == 200 and r.json()["outcome"] == "unknown"


def test_event_for_a_session_of_another_system_is_200_every_time(client, pg):
    """Another system on the same Stripe account (or a clinic since deleted): signed, valid,
    not ours. A 5xx would make Stripe retry it for days."""
    body = _event(metadata={"booking_id": str(uuid.uuid4()), "tenant_id": str(uuid.uuid4())})
    for _ in range(2):
        r = client.post("/webhooks/stripe", content=body, headers=_signed(body))
        assert r.status_code == 200 and r.json()["outcome"] == "unknown"


@pytest.mark.parametrize("metadata", [{}, {"tenant_id": "not-a-uuid"}, {"tenant_id": "x" * 5000}])
def test_event_naming_no_clinic_is_ignored(client, metadata):
    body = _event(metadata=metadata, client_reference_id=None)
    r = client.post("/webhooks/stripe", content=body, headers=_signed(body))
    assert r.status_code == 200 and r.json() == {"outcome": "ignored"}


@pytest.mark.parametrize(("amount", "currency"), [(1, "jpy"), (1, None), (None, "eur")])
def test_a_payment_of_the_wrong_amount_or_currency_confirms_nothing_and_is_refunded(
        client, pg, clinic, amount, currency):
    """A completed session whose money is not the deposit asked for (1 JPY for 50 PLN) is not
    a confirmation: the hold fails, the money paid is owed back and the audit says why."""
    r, _ = book(client, clinic, email=f"mismatch.{uuid.uuid4().hex[:8]}@example.com")
    assert r.status_code == 303
    session = session_of(r.headers["location"])
    row = booking_row(pg.owner, clinic.id, session)
    paid = amount if amount is not None else row["amount_minor"]
    body = _event(id=session, client_reference_id=str(row["id"]), amount_total=paid,
                  currency=currency or row["currency"], payment_intent=f"pi_{uuid.uuid4().hex}",
                  metadata={"booking_id": str(row["id"]), "tenant_id": str(clinic.id)})
    r = client.post("/webhooks/stripe", content=body, headers=_signed(body))
    assert r.status_code == 200
    assert booking_row(pg.owner, clinic.id, session)["status"] == "failed"
    assert owner_sql(pg.owner, clinic.id, "select amount_minor, currency, reason from"
                     " dentbook.refunds where booking_id = %s", (row["id"],)) == [
        (paid, currency or row["currency"], "amount_mismatch")]
    [(detail,)] = owner_sql(pg.owner, clinic.id, "select detail from dentbook.audit_log where"
                            " booking_id = %s and to_status = 'failed'", (row["id"],))
    assert f"expected {row['amount_minor']} {row['currency']}" in detail


def test_database_outage_is_5xx_so_stripe_retries(pg):
    gone = make_conninfo(pg.app, dbname=f"missing_{uuid.uuid4().hex[:8]}", connect_timeout=2)
    app = Server(app_settings(pg, database_url=gone, stripe_secret_key=STRIPE_KEY,
                              stripe_webhook_secret=WEBHOOK_SECRET)).start()
    try:
        body = _event()
        r = httpx.post(f"{app.url}/webhooks/stripe", content=body, headers=_signed(body), timeout=30)
        assert r.status_code == 503
        assert httpx.get(f"{app.url}/readyz", timeout=30).status_code == 503
    finally:
        app.stop()
