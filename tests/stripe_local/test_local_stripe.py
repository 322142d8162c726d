"""The local Stripe service driven over real HTTP by the official `stripe` library."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import stripe

from conftest import (
    API_KEY,
    AUTH,
    SECRET,
    Receiver,
    Running,
    control_pay,
    session_params,
    verified,
)
from dentbook.stripe_local import ConfigError, LocalStripeConfig
from dentbook.stripe_local.forms import parse_form


def test_create_retrieve_expire(svc: Running, receiver: Receiver) -> None:
    expires = int(time.time()) + 3600
    s = svc.client.v1.checkout.sessions.create(params=session_params(expires_at=expires))
    assert s.id.startswith("cs_test_") and s.object == "checkout.session"
    assert s.url == f"{svc.base}/pay/{s.id}"
    assert (s.status, s.payment_status, s.mode) == ("open", "unpaid", "payment")
    assert (s.amount_total, s.currency, s.expires_at) == (5000, "eur", expires)
    assert s.metadata["booking_id"] == "bk_1" and s.client_reference_id == "hold_1"
    assert s.payment_intent is None and s.livemode is False
    assert svc.client.v1.checkout.sessions.retrieve(s.id).to_dict() == s.to_dict()

    expired = svc.client.v1.checkout.sessions.expire(s.id)
    assert expired.status == "expired" and expired.url is None
    with pytest.raises(stripe.InvalidRequestError, match=r'status in \["open"\]'):
        svc.client.v1.checkout.sessions.expire(s.id)
    event = verified(receiver.wait_for("checkout.session.expired")[0])
    assert event.data.object.id == s.id and event.id.startswith("evt_")


@pytest.mark.parametrize("offset", [60, 25 * 3600])
def test_expires_at_out_of_range(svc: Running, offset: int) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        svc.client.v1.checkout.sessions.create(
            params=session_params(expires_at=int(time.time()) + offset))
    assert err.value.param == "expires_at" and err.value.http_status == 400


def test_bad_params_and_unknown_things(svc: Running) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        svc.client.v1.checkout.sessions.create(params=session_params(colour="red"))
    assert err.value.param == "colour"
    with pytest.raises(stripe.InvalidRequestError) as err:
        svc.client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert (err.value.http_status, err.value.code) == (404, "resource_missing")
    r = httpx.get(f"{svc.base}/v1/customers", headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"


def test_idempotency(svc: Running) -> None:
    opts: Any = {"idempotency_key": "hold-42"}
    create = svc.client.v1.checkout.sessions.create
    first = create(params=session_params(), options=opts)
    again = create(params=session_params(), options=opts)
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    with pytest.raises(stripe.IdempotencyError):
        create(params=session_params(client_reference_id="other"), options=opts)

    twins: Any = {"idempotency_key": "twins"}
    with ThreadPoolExecutor(6) as pool:
        ids = set(pool.map(lambda _: create(params=session_params(), options=twins).id,
                           range(6)))
    assert len(ids) == 1


def test_authentication(svc: Running) -> None:
    wrong = stripe.StripeClient("sk_test_wrong", base_addresses={"api": svc.base})
    with pytest.raises(stripe.AuthenticationError):
        wrong.v1.checkout.sessions.create(params=session_params())
    r = httpx.post(f"{svc.base}/v1/checkout/sessions", data={"mode": "payment"})
    assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
    assert httpx.get(f"{svc.base}/_test/events").status_code == 401


def test_hosted_page_card_success(svc: Running, receiver: Receiver) -> None:
    s = svc.client.v1.checkout.sessions.create(params=session_params())
    page = httpx.get(s.url)
    assert page.status_code == 200 and "€\xa050.00" in page.text
    for text in ('<label for="card">', '<label for="exp">', '<label for="cvc">',
                 "Delayed payment (bank transfer)", "Will succeed later", "Will fail later",
                 'href="http://app.test/cancelled"', "Cancel and go back"):
        assert text in page.text
    r = httpx.post(s.url, data={"method": "card", "card": "4242 4242 4242 4242",
                                "exp": "12 / 34", "cvc": "123"})
    assert r.status_code == 303
    assert r.headers["location"] == f"http://app.test/done?session={s.id}"

    event = verified(receiver.wait_for("checkout.session.completed")[0])
    assert event.type == "checkout.session.completed" and event.data.object.id == s.id
    assert event.data.object.payment_status == "paid"
    assert svc.client.construct_event(receiver.deliveries[0].body,
                                      receiver.deliveries[0].headers["Stripe-Signature"],
                                      SECRET).id == event.id
    done = svc.client.v1.checkout.sessions.retrieve(s.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    pi = svc.client.v1.payment_intents.retrieve(done.payment_intent)
    assert pi.status == "succeeded" and pi.amount == 5000 and pi.latest_charge
    again = httpx.post(s.url, data={"method": "card", "card": "4242424242424242"})
    assert again.status_code == 410 and 'data-error="session_complete"' in again.text


def test_declined_and_invalid_cards(svc: Running, receiver: Receiver) -> None:
    s = svc.client.v1.checkout.sessions.create(params=session_params())
    r = httpx.post(s.url, data={"method": "card", "card": "4000 0000 0000 0002"})
    assert r.status_code == 402 and 'data-error="card_declined"' in r.text
    assert "Your card was declined." in r.text
    r = httpx.post(s.url, data={"method": "card", "card": "1234"})
    assert 'data-error="invalid_card"' in r.text and "Your card number is invalid." in r.text
    api = control_pay(svc, s.id, method="card", card="4000000000000002")
    assert api.status_code == 402 and api.json()["error"]["code"] == "card_declined"
    assert svc.client.v1.checkout.sessions.retrieve(s.id).status == "open"
    time.sleep(0.3)
    assert receiver.deliveries == []


@pytest.mark.parametrize(("method", "outcome", "pi_status", "paid"), [
    ("delayed_success", "checkout.session.async_payment_succeeded", "succeeded", "paid"),
    ("delayed_failure", "checkout.session.async_payment_failed", "requires_payment_method",
     "unpaid"),
])
def test_delayed_payments(svc: Running, receiver: Receiver, method: str, outcome: str,
                          pi_status: str, paid: str) -> None:
    s = svc.client.v1.checkout.sessions.create(params=session_params())
    r = httpx.post(s.url, data={"method": method})
    assert r.status_code == 303
    completed = verified(receiver.wait_for("checkout.session.completed")[0])
    assert completed.data.object.payment_status == "unpaid"
    pi_id = completed.data.object.payment_intent
    assert svc.client.v1.payment_intents.retrieve(pi_id).status == "processing"
    settled = verified(receiver.wait_for(outcome)[0])
    assert settled.data.object.payment_status == paid
    assert svc.client.v1.payment_intents.retrieve(pi_id).status == pi_status
    assert receiver.types() == ["checkout.session.completed", outcome]


def test_expiry_timer_and_late_payment(start_service: Any, receiver: Receiver) -> None:
    svc = start_service(min_expiry_seconds=0)
    s = svc.client.v1.checkout.sessions.create(
        params=session_params(expires_at=int(time.time()) + 1))
    expired = verified(receiver.wait_for("checkout.session.expired")[0])
    assert expired.data.object.status == "expired"
    assert httpx.get(s.url).status_code == 410
    refused = httpx.post(s.url, data={"method": "card", "card": "4242424242424242"})
    assert refused.status_code == 410 and 'data-error="session_expired"' in refused.text
    assert control_pay(svc, s.id, card="4242424242424242").status_code == 410
    assert svc.client.v1.checkout.sessions.retrieve(s.id).payment_intent is None

    late = control_pay(svc, s.id, method="card", card="4242424242424242", force="1")
    assert late.status_code == 200 and late.json()["payment_status"] == "paid"
    assert verified(receiver.wait_for("checkout.session.completed")[0]).data.object.id == s.id


def test_expire_now_control(svc: Running, receiver: Receiver) -> None:
    s = svc.client.v1.checkout.sessions.create(params=session_params())
    r = httpx.post(f"{svc.base}/_test/sessions/{s.id}/expire_now", headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "expired"
    receiver.wait_for("checkout.session.expired")


def test_refunds(svc: Running) -> None:
    s = svc.client.v1.checkout.sessions.create(params=session_params())
    assert control_pay(svc, s.id, method="card", card="4242424242424242").status_code == 200
    pi = svc.client.v1.checkout.sessions.retrieve(s.id).payment_intent
    first = svc.client.v1.refunds.create(params={"payment_intent": pi, "amount": 2000,
                                                  "reason": "requested_by_customer"})
    assert first.id.startswith("re_test_") and first.status == "succeeded"
    assert (first.amount, first.currency, first.payment_intent) == (2000, "eur", pi)
    with pytest.raises(stripe.InvalidRequestError) as err:
        svc.client.v1.refunds.create(params={"payment_intent": pi, "amount": 4000})
    assert err.value.code == "amount_too_large"
    rest = svc.client.v1.refunds.create(params={"payment_intent": pi})
    assert rest.amount == 3000
    with pytest.raises(stripe.InvalidRequestError) as err:
        svc.client.v1.refunds.create(params={"payment_intent": pi})
    assert (err.value.http_status, err.value.code) == (400, "charge_already_refunded")
    with pytest.raises(stripe.InvalidRequestError) as err:
        svc.client.v1.refunds.create(params={"payment_intent": "pi_test_nope"})
    assert (err.value.http_status, err.value.code) == (404, "resource_missing")
    listed = svc.client.v1.refunds.list(params={"payment_intent": pi})
    assert [r.id for r in listed.data] == [rest.id, first.id]


def test_webhook_retry_and_resend(svc: Running, receiver: Receiver) -> None:
    receiver.fail_next = 2
    s = svc.client.v1.checkout.sessions.create(params=session_params())
    control_pay(svc, s.id, method="card", card="4242424242424242")
    ok = receiver.wait_for("checkout.session.completed")[0]
    assert [d.status for d in receiver.deliveries] == [500, 500, 200]
    events = httpx.get(f"{svc.base}/_test/events", headers=AUTH).json()["data"]
    record = events[0]
    assert (record["attempts"], record["last_status"], record["delivered"]) == (3, 200, True)

    r = httpx.post(f"{svc.base}/_test/events/{record['id']}/resend", headers=AUTH)
    assert r.status_code == 200
    again = receiver.wait_for("checkout.session.completed", count=2)[1]
    assert again.body == ok.body and verified(again).id == record["id"]


def test_live_keys_refused() -> None:
    for key in ("sk_live_abc", "rk_live_abc"):
        with pytest.raises(ConfigError, match="live"):
            LocalStripeConfig(api_key=key)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-m", "dentbook.stripe_local", "--api-key", "sk_live_abc"],
        capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "live" in proc.stderr


def test_cli_serves(tmp_path: Any) -> None:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dentbook.stripe_local", "--port", str(port),
         "--api-key", API_KEY, "--webhook-secret", SECRET, "--log-level", "warning"],
        env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/_test/events", headers=AUTH).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "CLI service did not start"
                time.sleep(0.1)
        client = stripe.StripeClient(API_KEY, base_addresses={"api": base})
        s = client.v1.checkout.sessions.create(params=session_params())
        assert s.url == f"{base}/pay/{s.id}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_bracket_form_parsing() -> None:
    params = parse_form(
        "line_items[1][quantity]=2&line_items[0][price_data][unit_amount]=5000"
        "&metadata[booking_id]=b%201&expand[]=a&expand[]=b&line_items[0][quantity]=1")
    assert params["line_items"][0] == {"price_data": {"unit_amount": "5000"}, "quantity": "1"}
    assert params["line_items"][1] == {"quantity": "2"}
    assert params["metadata"] == {"booking_id": "b 1"} and params["expand"] == ["a", "b"]
