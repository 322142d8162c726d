"""Scenario 7 — accessibility: axe-core (vendored, see vendor/README.md) finds no serious
or critical violation on any page a person meets, and the whole booking works with the
keyboard alone (Tab, Enter, typing) up to the checkout page.

The app's Content-Security-Policy allows only its own scripts, so the axe runs use a
context that bypasses CSP; the keyboard run uses a normal one."""

from __future__ import annotations

import re
import uuid

import pytest
from browser_kit import (
    FREE,
    RETURN,
    axe_clean,
    book_and_pay,
    fill_booking,
    pay_card,
    pick_free_slot,
    run_axe,
    staff_sign_in,
    submit_booking,
    tab_to,
    wait_checkout,
    wait_outcome,
)

pytestmark = pytest.mark.browser


def test_axe_patient_pages(new_context, make_clinic, live, shots):
    """Each page once (axe is slow on a full grid); the language alternates between pages."""
    clinic = make_clinic(doctors=2)
    page = new_context(bypass_csp=True).new_page()
    page.goto("/?lang=en")
    axe_clean(page, shots, "directory-en")
    page.goto("/?lang=pl")
    axe_clean(page, shots, "directory-pl")

    page.goto(f"/{clinic.slug}")
    page.goto(page.locator("#grid a[rel=next]").get_attribute("href"))
    axe_clean(page, shots, "clinic-pl")

    pick_free_slot(page, index=1)
    axe_clean(page, shots, "form-pl")

    page.goto(page.url.split("#")[0] + "&lang=en")
    with page.expect_navigation() as nav:
        submit_booking(page)  # empty: every required field is missing
    assert nav.value.status == 422
    page.locator("[data-field-error]").first.wait_for()
    axe_clean(page, shots, "form-errors-en")

    fill_booking(page, "Ewa Dostępna", f"a11y-{uuid.uuid4().hex[:8]}@example.com")
    submit_booking(page)
    wait_checkout(page, live.stripe_url)
    axe_clean(page, shots, "checkout")  # the shipped hosted test page too
    pay_card(page)
    page.wait_for_url(RETURN)
    wait_outcome(page, "confirmed")
    axe_clean(page, shots, "return-en")


def test_axe_staff_pages(new_context, live, shots):
    book_and_pay(new_context().new_page(), live.stripe_url, "klinika-alfa", "Ewa Dostępna",
                 f"a11y-staff-{uuid.uuid4().hex[:8]}@example.com", index=6)
    page = new_context(bypass_csp=True).new_page()
    page.goto("/klinika-alfa/staff/login")
    axe_clean(page, shots, "staff-login")
    page.locator('input[name="email"]').fill("alfa@klinika.test")
    page.locator('input[name="password"]').fill("wrong password")
    page.locator('form:has(input[name="password"]) button[type="submit"]').click()
    page.locator("[data-error]").wait_for()
    axe_clean(page, shots, "staff-login-failed")
    staff_sign_in(page, "klinika-alfa", "alfa@klinika.test")
    page.locator("[data-booking]").first.wait_for()
    axe_clean(page, shots, "staff-dashboard")


def _focus_visible(page) -> bool:
    """The focused element shows an outline (a visible focus indicator)."""
    return bool(page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }"""))


def test_booking_by_keyboard_alone(new_context, make_clinic, live, shots):
    clinic = make_clinic(doctors=2)
    page = new_context().new_page()
    page.goto("/")

    # The skip link comes first and is shown when focused.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('skip')")
    assert page.locator("a.skip").is_visible()

    tab_to(page, f'[data-clinic="{clinic.slug}"]')
    assert _focus_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/{clinic.slug}")

    # Choose the second doctor with the keyboard: the grid follows.
    tab_to(page, 'select[name="doctor"]')
    page.keyboard.press("ArrowDown")
    page.locator(f'#grid[data-doctor="{clinic.doctors[1]}"]').wait_for()

    # Next week, by keyboard: the grid is swapped and the focus stays on the link, so the
    # next Enter goes another week on (it used to fall back to the page's top).
    tab_to(page, "#grid a[rel=next]")
    page.keyboard.press("Enter")
    page.locator("#grid a[rel=prev]").wait_for()
    page.wait_for_function("() => document.activeElement?.id === 'week-next'")
    week = page.evaluate("() => new URL(location.href).searchParams.get('week')")
    page.keyboard.press("Enter")
    page.wait_for_function("w => new URL(location.href).searchParams.get('week') > w", arg=week)
    page.wait_for_function("() => document.activeElement?.id === 'week-next'")
    shots(page, "next-week")

    tab_to(page, FREE)
    assert _focus_visible(page)
    start = page.evaluate("document.activeElement.parentElement.dataset.start")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"start="))
    assert page.locator('#book input[name="start"]').input_value() == start

    tab_to(page, "#f-name")
    page.keyboard.type("Klara Klawiatura")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-email"
    page.keyboard.type(f"keys-{uuid.uuid4().hex[:8]}@example.com")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-phone"
    page.keyboard.type("+48 500 600 700")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.type") == "submit"
    assert _focus_visible(page)
    shots(page, "form-filled")
    page.keyboard.press("Enter")
    wait_checkout(page, live.stripe_url)
    shots(page, "checkout")

    # The hosted test checkout page works by keyboard too.
    tab_to(page, "#card")
    page.keyboard.type("4242424242424242")
    page.keyboard.press("Enter")
    page.wait_for_url(RETURN)
    wait_outcome(page, "confirmed")
    shots(page, "confirmed")


def test_axe_reports_a_planted_violation(new_context):
    """The axe harness itself: a nameless button and a text box without a label are found."""
    page = new_context(bypass_csp=True).new_page()
    page.goto("/")
    page.evaluate("""() => { document.querySelector('main').insertAdjacentHTML('beforeend',
        '<button></button><input type="text">'); }""")
    found = {v["id"] for v in run_axe(page)}
    assert {"button-name", "label"} <= found, found
