"""Scenario 8 — a phone (390×844, touch): the directory, the grid, the booking form (with
and without errors), the checkout page, the return page and the staff pages fit the width: no horizontal
scrolling, and the tap targets are at least 44 px high."""

from __future__ import annotations

import uuid

import pytest
from browser_kit import (
    FREE,
    RETURN,
    book_and_pay,
    fill_booking,
    pay_card,
    pick_free_slot,
    staff_sign_in,
    submit_booking,
    wait_checkout,
    wait_outcome,
)

pytestmark = pytest.mark.browser
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


def _fits(page, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{what}: the page is {width}px wide on a 390px phone"


def test_phone_viewport(new_context, make_clinic, live, shots):
    clinic = make_clinic()
    page = new_context(**PHONE).new_page()
    page.goto("/")
    _fits(page, "directory")
    shots(page, "directory")

    page.goto(f"/{clinic.slug}")
    page.goto(page.locator("#grid a[rel=next]").get_attribute("href"))
    _fits(page, "clinic page with the grid")
    shots(page, "grid")
    small = page.evaluate(f"""() => [...document.querySelectorAll('{FREE}')]
        .filter(a => a.getBoundingClientRect().height < 44).length""")
    assert small == 0, f"{small} slot links are less than 44px high"

    pick_free_slot(page, index=0)
    _fits(page, "booking form")
    shots(page, "form")
    submit_booking(page)
    page.locator("[data-field-error]").first.wait_for()
    _fits(page, "booking form with errors")
    shots(page, "form-errors")

    fill_booking(page, "Telefon Komórkowy", f"phone-{uuid.uuid4().hex[:8]}@example.com")
    submit_booking(page)
    wait_checkout(page, live.stripe_url)
    _fits(page, "hosted checkout")
    shots(page, "checkout")
    pay_card(page)
    page.wait_for_url(RETURN)
    wait_outcome(page, "confirmed")
    _fits(page, "return page")
    shots(page, "return")


def test_phone_staff_pages(new_context, live, shots):
    book_and_pay(new_context().new_page(), live.stripe_url, "klinika-alfa", "Telefon Personel",
                 f"phone-staff-{uuid.uuid4().hex[:8]}@example.com", index=7)
    page = new_context(**PHONE).new_page()
    page.goto("/klinika-alfa/staff/login")
    _fits(page, "staff sign-in")
    shots(page, "staff-login")
    staff_sign_in(page, "klinika-alfa", "alfa@klinika.test")
    page.locator("[data-booking]").first.wait_for()
    _fits(page, "staff dashboard")
    shots(page, "staff-dashboard")
