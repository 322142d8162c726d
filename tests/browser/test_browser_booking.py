"""Scenario 1 — the seed's "try it yourself", step by step, as a person does it in Chromium:
directory → clinic → doctor, visit, free slot → booking form → hosted test checkout →
pay 4242… → return page turns confirmed (live) → staff of this clinic see the appointment,
staff of the other clinic do not."""

from __future__ import annotations

import re
import uuid

import pytest
from browser_kit import (
    FREE,
    booking_id,
    fill_booking,
    next_week,
    pay_card,
    pick_free_slot,
    staff_sign_in,
    submit_booking,
    wait_checkout,
    wait_outcome,
)

pytestmark = pytest.mark.browser


def test_try_it_yourself(new_context, live, shots):
    page = new_context().new_page()

    # The directory: both demo clinics, as links.
    page.goto("/")
    shots(page, "directory")
    page.locator('[data-clinic="klinika-alfa"]').click()
    page.wait_for_url("**/klinika-alfa")
    assert page.locator("h1").inner_text() == "Klinika Alfa"
    shots(page, "clinic")

    # Choose the second doctor and the cleaning visit: the grid follows (htmx, no reload).
    doctor = page.locator('select[name="doctor"]')
    doctor.select_option(index=1)
    chosen_doctor = doctor.input_value()
    page.locator(f'#grid[data-doctor="{chosen_doctor}"]').wait_for()
    visit = page.locator('select[name="visit"]')
    visit.select_option(index=1)
    chosen_visit = visit.input_value()
    page.locator(f'#grid[sse-connect*="visit={chosen_visit}"]').wait_for()
    # Next week: well past the minimum notice, whatever the day today.
    next_week(page)
    assert page.locator(FREE).count() > 0
    shots(page, "next-week")

    start = pick_free_slot(page, index=2)
    assert f"doctor={chosen_doctor}" in page.url and f"visit={chosen_visit}" in page.url
    assert page.locator('#book input[name="doctor_id"]').input_value() == chosen_doctor
    shots(page, "booking-form")

    email = f"try-{uuid.uuid4().hex[:8]}@example.com"
    fill_booking(page, "Jan Kowalski", email, "+48 600 100 200")
    submit_booking(page)
    wait_checkout(page, live.stripe_url)
    assert email in page.locator("main").inner_text()
    shots(page, "checkout")

    pay_card(page)
    page.wait_for_url(re.compile(r"/klinika-alfa/bookings/[0-9a-f-]+/return"))
    shots(page, "return-first")
    # "processing" first if the webhook is slower than the redirect; then live to confirmed
    assert page.locator("#outcome").get_attribute("data-outcome") in ("processing", "confirmed")
    wait_outcome(page, "confirmed")
    shots(page, "return-confirmed")
    bid = booking_id(page.url)

    # The slot is gone from the calendar now.
    page.goto(f"/klinika-alfa?doctor={chosen_doctor}&visit={chosen_visit}&start={start}")
    assert page.locator(f'[data-slot][data-start="{start}"]').get_attribute("data-state") == "taken"

    # Staff of Klinika Alfa see the appointment ...
    alfa = new_context().new_page()
    staff_sign_in(alfa, "klinika-alfa", "alfa@klinika.test")
    row = alfa.locator(f'[data-booking="{bid}"]')
    row.wait_for()
    assert row.get_attribute("data-status") == "confirmed"
    assert "Jan Kowalski" in row.inner_text() and email in row.inner_text()
    shots(alfa, "staff-alfa")

    # ... staff of Klinika Beta do not, not even by asking for it.
    beta = new_context().new_page()
    staff_sign_in(beta, "klinika-beta", "beta@klinika.test")
    assert beta.locator(f'[data-booking="{bid}"]').count() == 0
    assert email not in beta.locator("body").inner_text()
    shots(beta, "staff-beta")
    # Beta's session is no key to Alfa's dashboard.
    beta.goto("/klinika-alfa/staff")
    assert "/klinika-alfa/staff/login" in beta.url
    assert beta.locator(f'[data-booking="{bid}"]').count() == 0
