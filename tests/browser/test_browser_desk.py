"""The front desk in Chromium: reception books a visit taken by phone with the keyboard
alone (from a free cell of the day's timetable to the visit on the agenda), a second
dashboard sees it appear live, and axe finds no serious violation on the new pages."""

from __future__ import annotations

import re
import uuid

import pytest
from browser_kit import axe_clean, staff_sign_in, tab_to

from helpers import next_weekday
from staff_helpers import PASSWORD, add_staff

pytestmark = pytest.mark.browser


def _focused(page) -> str:
    return str(page.evaluate("document.activeElement.id || document.activeElement.name || ''"))


def _staff(pg, clinic, role: str) -> str:
    return add_staff(pg, clinic, f"{role}-{uuid.uuid4().hex[:6]}@example.test", PASSWORD, role)


def test_phone_booking_by_keyboard_alone_reaches_a_second_dashboard_live(
        new_context, make_clinic, pg, live, shots):
    clinic = make_clinic(doctors=2)
    day = next_weekday(7, 2).isoformat()
    agenda = f"/{clinic.slug}/staff?view=day&date={day}"

    watcher = new_context().new_page()
    staff_sign_in(watcher, clinic.slug, _staff(pg, clinic, "viewer"), PASSWORD)
    watcher.goto(agenda)
    watcher.locator("#agenda[data-view=day]").wait_for()

    page = new_context().new_page()
    staff_sign_in(page, clinic.slug, _staff(pg, clinic, "reception"), PASSWORD)
    page.goto(agenda)
    # The second doctor's first free time, reached with Tab and opened with Enter.
    cell = f'a.add[data-doctor="{clinic.doctors[1]}"]'
    tab_to(page, cell)
    start = page.evaluate("document.activeElement.dataset.free")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/staff/bookings/new\?"))
    shots(page, "phone-form")
    assert page.locator("#f-doctor_id").input_value() == str(clinic.doctors[1])
    assert page.locator("#f-start").input_value()  # the cell's local time

    tab_to(page, "#f-visit_type_id")
    page.keyboard.press("ArrowDown")  # the second visit type
    tab_to(page, "#f-name")
    page.keyboard.type("Tadeusz Telefoniczny")
    page.keyboard.press("Tab")
    assert _focused(page) == "f-phone"
    page.keyboard.type("+48 601 602 603")
    page.keyboard.press("Tab")
    assert _focused(page) == "f-email"
    page.keyboard.type(f"tadeusz-{uuid.uuid4().hex[:6]}@example.com")
    page.keyboard.press("Tab")
    assert _focused(page) == "f-note"
    page.keyboard.type("Prosi o poranne godziny")
    tab_to(page, 'form[data-form="phone"] button[type="submit"]')
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(r"done=booked"))
    assert page.locator('[data-done="booked"]').is_visible()
    entry = page.locator('#agenda [data-booking][data-status="confirmed"]').first
    entry.wait_for()
    booking = entry.get_attribute("data-booking")
    assert "Tadeusz Telefoniczny" in entry.inner_text()
    assert entry.locator("time").get_attribute("datetime").startswith(start[:16].replace("Z", ""))
    shots(page, "booked")
    # The other dashboard, untouched since it opened, shows it too (SSE).
    watcher.locator(f'#agenda [data-booking="{booking}"]').wait_for()
    assert "Tadeusz Telefoniczny" in watcher.locator(f'[data-booking="{booking}"]').inner_text()

    # From the entry to its page, still by keyboard: the cancel form wants a reason.
    tab_to(page, f'[data-booking="{booking}"] a')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/staff/bookings/{booking}$"))
    tab_to(page, 'form[data-form="cancel"] button[type="submit"]')
    page.keyboard.press("Enter")
    page.locator('[data-field-error="reason"]').wait_for()
    assert _focused(page) == "f-reason"  # the field in error has the focus
    page.keyboard.type("Pacjent zadzwonił, że nie przyjdzie")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"done=cancelled"))
    watcher.locator(f'#agenda [data-booking="{booking}"]').wait_for(state="detached")


def test_axe_front_desk_pages(new_context, make_clinic, pg, live, shots):
    clinic = make_clinic(doctors=2)
    day = next_weekday(7, 3).isoformat()
    page = new_context(bypass_csp=True).new_page()
    staff_sign_in(page, clinic.slug, _staff(pg, clinic, "reception"), PASSWORD)
    page.goto(f"/{clinic.slug}/staff?view=day&date={day}&lang=en")
    page.locator("a.add").first.click()
    page.wait_for_url(re.compile(r"/staff/bookings/new"))
    axe_clean(page, shots, "phone-form-en")
    page.locator("#f-name").fill("Ada Dostępna")
    page.locator("#f-phone").fill("600 700 800")
    page.locator('form[data-form="phone"] button[type="submit"]').click()
    page.wait_for_url(re.compile(r"done=booked"))
    axe_clean(page, shots, "day-en")
    booking = page.locator("#agenda [data-booking]").first.get_attribute("data-booking")
    start = page.locator("#agenda [data-booking] time").first.get_attribute("datetime")

    # The same time again: 409, naming the visit.
    page.goto(f"/{clinic.slug}/staff/bookings/new?doctor={clinic.doctors[0]}"
              f"&start={start.replace('+00:00', 'Z')}&lang=pl")
    page.locator("#f-name").fill("Druga Osoba")
    page.locator("#f-phone").fill("600 700 801")
    with page.expect_navigation() as nav:
        page.locator('form[data-form="phone"] button[type="submit"]').click()
    assert nav.value.status == 409
    page.locator(f'[data-conflict="{booking}"]').wait_for()
    axe_clean(page, shots, "phone-conflict-pl")

    page.goto(f"/{clinic.slug}/staff?view=week&date={day}")
    axe_clean(page, shots, "week-pl")
    page.goto(f"/{clinic.slug}/staff?date={day}&lang=en")
    axe_clean(page, shots, "list-en")
    page.goto(f"/{clinic.slug}/staff/bookings/{booking}")
    axe_clean(page, shots, "visit-en")
    page.goto(f"/{clinic.slug}/staff/blocks/new?lang=pl")
    axe_clean(page, shots, "block-form-pl")
    page.goto(f"/{clinic.slug}/staff/audit")
    page.locator("[data-audit]").first.wait_for()
    axe_clean(page, shots, "audit-pl")
