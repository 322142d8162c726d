"""Scenario 6 — JavaScript disabled: the patient picks a doctor and visit with the plain
form, moves between weeks and picks a slot with plain links, gets the booking form's
errors as a full page, books, pays on the hosted page and reads the outcome (refreshing
by hand while the payment is processing)."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from browser_kit import FREE, RETURN, fill_booking, pay_card, submit_booking, wait_checkout

pytestmark = pytest.mark.browser


def test_booking_without_javascript(new_context, make_clinic, live, shots):
    clinic = make_clinic(doctors=2)
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/")
    page.locator(f'[data-clinic="{clinic.slug}"]').click()
    page.wait_for_url(f"**/{clinic.slug}")
    shots(page, "clinic")

    # The picker is a plain GET form: choose, then press "Show free times".
    page.locator('select[name="doctor"]').select_option(str(clinic.doctors[1]))
    page.locator('select[name="visit"]').select_option(str(clinic.visits["long"]))
    page.locator("form.picker button[type=submit]").click()
    page.wait_for_url(re.compile(rf"doctor={clinic.doctors[1]}"))
    assert page.locator("#grid").get_attribute("data-doctor") == str(clinic.doctors[1])

    # Weeks are plain links.
    page.locator("#grid a[rel=next]").click()
    page.wait_for_url(re.compile(r"week=\d{4}-\d{2}-\d{2}"))
    assert f"visit={clinic.visits['long']}" in page.url
    shots(page, "next-week")

    # A slot is a plain link to the same page with the booking form.
    link = page.locator(FREE).nth(2)
    start = link.locator("xpath=..").get_attribute("data-start")
    link.click()
    page.wait_for_url(re.compile(r"start="))
    assert page.locator('#book input[name="start"]').input_value() == start

    # Errors come back as a full page (422) with the form and the messages.
    with page.expect_navigation() as nav:
        submit_booking(page)
    assert nav.value.status == 422
    assert page.locator('[data-field-error="name"]').is_visible()
    assert page.locator('[data-field-error="email"]').is_visible()
    assert page.locator("#f-name").get_attribute("aria-invalid") == "true"
    shots(page, "form-errors")

    fill_booking(page, "Bez Skryptów", f"nojs-{uuid.uuid4().hex[:8]}@example.com", "600 700 800")
    submit_booking(page)
    wait_checkout(page, live.stripe_url)
    shots(page, "checkout")

    pay_card(page)
    page.wait_for_url(RETURN)
    # No live updates without JavaScript: the page offers a refresh link while processing.
    deadline = time.monotonic() + 20
    while page.locator("#outcome").get_attribute("data-outcome") == "processing":
        assert time.monotonic() < deadline, "still processing"
        refresh = page.locator("#outcome noscript a, #outcome a").first
        if refresh.count():
            refresh.click()
        else:
            page.reload()
        time.sleep(0.3)
    assert page.locator("#outcome").get_attribute("data-outcome") == "confirmed"
    shots(page, "confirmed")
