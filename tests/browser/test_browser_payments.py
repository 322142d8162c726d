"""Scenario 4 — what the patient sees when the payment does not simply succeed:
a declined card (told on the hosted page, then paid with a good card), and the delayed
method (bank transfer) that succeeds or fails later: the return page shows "processing"
and then, live, "confirmed" or "failed"."""

from __future__ import annotations

import re
import uuid

import pytest
from browser_kit import (
    clinic_url,
    fill_booking,
    pay_card,
    pay_delayed,
    pick_free_slot,
    slot_cell,
    submit_booking,
    wait_checkout,
    wait_outcome,
    week_of,
)

pytestmark = pytest.mark.browser
RETURN = re.compile(r"/bookings/[0-9a-f-]+/return\?session_id=cs_")


def _to_checkout(page, clinic, live, index: int, who: str) -> str:
    page.goto(f"/{clinic.slug}")
    week = week_of(page.locator("#grid a[rel=next]").get_attribute("href"))
    page.goto(clinic_url(clinic.slug, clinic.doctors[0], clinic.visits["short"], week))
    start = pick_free_slot(page, index=index)
    fill_booking(page, f"Pacjent {who}", f"{who}-{uuid.uuid4().hex[:8]}@example.com")
    submit_booking(page)
    wait_checkout(page, live.stripe_url)
    return start


def test_declined_card_then_a_good_one(new_context, make_clinic, live, shots):
    clinic = make_clinic()
    page = new_context().new_page()
    _to_checkout(page, clinic, live, 0, "declined")

    pay_card(page, "4000 0000 0000 0002")
    error = page.locator('[data-error="card_declined"]')
    error.wait_for()
    assert page.url.startswith(live.stripe_url)  # still on the checkout page, told why
    assert page.locator("#card").get_attribute("aria-invalid") == "true"
    shots(page, "declined")

    pay_card(page, "4242 4242 4242 4242")
    page.wait_for_url(RETURN)
    wait_outcome(page, "confirmed")
    shots(page, "confirmed")


def test_delayed_payment_succeeds_or_fails_later(new_context, make_clinic, live, shots):
    clinic = make_clinic()
    ok, bad = new_context().new_page(), new_context().new_page()
    _to_checkout(ok, clinic, live, 1, "later-ok")
    start_bad = _to_checkout(bad, clinic, live, 2, "later-bad")

    pay_delayed(ok, succeed=True)
    pay_delayed(bad, succeed=False)
    for page in (ok, bad):
        page.wait_for_url(RETURN)
        # The bank transfer has not arrived yet: the patient is told to wait, live.
        assert page.locator("#outcome").get_attribute("data-outcome") == "processing"
    shots(ok, "ok-processing")

    # The local Stripe settles the transfer a few seconds later; the pages follow by SSE.
    wait_outcome(ok, "confirmed", timeout=30_000)
    wait_outcome(bad, "failed", timeout=30_000)
    shots(ok, "ok-confirmed")
    shots(bad, "bad-failed")
    assert "/return" in ok.url and "/return" in bad.url  # no reload was needed

    # The failed transfer released its time: it is free again on the calendar.
    bad.goto(f"/{clinic.slug}?doctor={clinic.doctors[0]}&visit={clinic.visits['short']}"
             f"&start={start_bad}")
    assert slot_cell(bad, start_bad).get_attribute("data-state") == "free"
    assert bad.locator("#book form").count() == 1  # and can be booked again
