"""Idempotency-Key twins over real HTTP: 409 while the first runs, a replay once it is done.

The service's hold control keeps a keyed request in progress until released, so the twin
provably arrives while the first is still running (no sleeps, no timing luck).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import stripe

from conftest import API_KEY, AUTH, Running, session_params

FORM = {"mode": "payment", "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "pln",
        "line_items[0][price_data][unit_amount]": "5000",
        "line_items[0][price_data][product_data][name]": "Deposit"}


def state(svc: Running) -> dict[str, Any]:
    r = httpx.get(f"{svc.base}/_test/idempotency", headers=AUTH)
    assert r.status_code == 200
    return r.json()


def wait_state(svc: Running, check: Callable[[dict[str, Any]], bool]) -> None:
    """Poll until the service reports `check`; the pytest timeout bounds a hang."""
    while not check(state(svc)):
        time.sleep(0.02)


def create(svc: Running, key: str, **extra: str) -> httpx.Response:
    return httpx.post(f"{svc.base}/v1/checkout/sessions", data={**FORM, **extra},
                      headers={**AUTH, "Idempotency-Key": key}, timeout=60)


def held_first(svc: Running, pool: ThreadPoolExecutor, key: str) -> Future[httpx.Response]:
    """Start a keyed create that stays in progress until `release`."""
    assert httpx.post(f"{svc.base}/_test/idempotency/hold", headers=AUTH).json()["held"]
    first = pool.submit(create, svc, key)
    wait_state(svc, lambda s: s["in_progress"] == [key])
    return first


def release(svc: Running) -> None:
    assert httpx.post(f"{svc.base}/_test/idempotency/release",
                      headers=AUTH).json()["held"] is False


def test_a_twin_in_progress_gets_409_and_a_later_repeat_the_replay(svc: Running) -> None:
    with ThreadPoolExecutor(1) as pool:
        first = held_first(svc, pool, "hold-1")
        twin = create(svc, "hold-1")
        other_params = create(svc, "hold-1", client_reference_id="other")
        assert not first.done()
        release(svc)
        done = first.result()

    assert twin.status_code == 409
    error = twin.json()["error"]
    assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_in_use")
    assert error["message"].startswith(
        "There is currently another in-progress request using this Idempotent Key")
    assert "hold-1" in error["message"]
    # No "don't retry" advice: the stripe library's own rule (retry a 409) applies.
    assert "Stripe-Should-Retry" not in twin.headers
    assert other_params.status_code == 409

    assert done.status_code == 200 and "Idempotent-Replayed" not in done.headers
    again = create(svc, "hold-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == done.content
    assert state(svc) == {"held": False, "in_progress": [], "conflicts": 2}


def test_without_retries_the_library_raises_api_error_409(svc: Running) -> None:
    client = stripe.StripeClient(API_KEY, base_addresses={"api": svc.base},
                                 max_network_retries=0)
    with ThreadPoolExecutor(1) as pool:
        first = held_first(svc, pool, "hold-2")
        with pytest.raises(stripe.APIError) as err:
            client.v1.checkout.sessions.create(params=session_params(),
                                               options={"idempotency_key": "hold-2"})
        release(svc)
        assert first.result().status_code == 200
    assert err.value.http_status == 409
    assert err.value.json_body["error"]["code"] == "idempotency_key_in_use"
    assert not isinstance(err.value, stripe.IdempotencyError)


def test_the_library_retries_a_409_and_gets_the_first_answer(svc: Running) -> None:
    # Generous retries: the first retry may come before the test releases the hold.
    client = stripe.StripeClient(API_KEY, base_addresses={"api": svc.base},
                                 max_network_retries=8)
    opts: Any = {"idempotency_key": "hold-3"}
    params = session_params()
    with ThreadPoolExecutor(2) as pool:
        assert httpx.post(f"{svc.base}/_test/idempotency/hold", headers=AUTH).status_code == 200
        first = pool.submit(client.v1.checkout.sessions.create, params=params, options=opts)
        wait_state(svc, lambda s: s["in_progress"] == ["hold-3"])
        twin = pool.submit(client.v1.checkout.sessions.create, params=params, options=opts)
        wait_state(svc, lambda s: s["conflicts"] >= 1)
        release(svc)
        a, b = first.result(), twin.result()
    assert a.id == b.id
    assert b.last_response.headers.get("Idempotent-Replayed") == "true"
    assert a.last_response.headers.get("Idempotent-Replayed") is None


def test_hold_controls_need_the_key(svc: Running) -> None:
    for method, path in (("POST", "hold"), ("POST", "release"), ("GET", "")):
        url = f"{svc.base}/_test/idempotency/{path}".rstrip("/")
        assert httpx.request(method, url).status_code == 401
