"""Scenarios 2 and 3 — live calendars and races between two real browsers.

2. A slot booked in one browser turns `taken` in another one's open grid without a
   reload (SSE), and turns `free` again when the first patient cancels the checkout.
3. Two browsers submit the booking form for the same start at the same moment: one
   reaches the checkout page, the other is told the slot was just taken and sees the
   refreshed grid.
"""

from __future__ import annotations

import re
import uuid

import pytest
from browser_kit import (
    clinic_url,
    eventually,
    fill_booking,
    pick_free_slot,
    slot_cell,
    submit_booking,
    wait_checkout,
    week_of,
)

pytestmark = pytest.mark.browser


def _week_after(page, slug: str) -> str:
    page.goto(f"/{slug}")
    return week_of(page.locator("#grid a[rel=next]").get_attribute("href"))


def _sse_open(page) -> None:
    """htmx's SSE extension has opened the grid's EventSource (readyState OPEN)."""
    page.wait_for_function("() => document.querySelector('#grid')?.['htmx-internal-data']"
                           "?.sseEventSource?.readyState === 1")


def test_grid_follows_another_patient_live(new_context, make_clinic, live, shots):
    clinic = make_clinic()
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    booker, watcher = new_context().new_page(), new_context().new_page()
    week = _week_after(watcher, clinic.slug)
    url = clinic_url(clinic.slug, doctor, visit, week)

    watcher.goto(url)
    _sse_open(watcher)
    booker.goto(url)
    start = pick_free_slot(booker, index=3)
    cell = slot_cell(watcher, start)
    assert cell.get_attribute("data-state") == "free"
    shots(watcher, "watcher-before")

    fill_booking(booker, "Anna Live", f"live-{uuid.uuid4().hex[:8]}@example.com")
    submit_booking(booker)
    wait_checkout(booker, live.stripe_url)
    shots(booker, "booker-checkout")

    # The other browser's cell turns taken by itself: no reload, no click.
    watcher_url = watcher.url
    eventually(lambda: cell.get_attribute("data-state") == "taken", what="cell taken live")
    assert watcher.url == watcher_url
    assert cell.locator("a").count() == 0  # no link to a taken slot
    shots(watcher, "watcher-taken")

    # The first patient changes their mind on the checkout page: back on our page, which
    # asks first (nothing is released by merely arriving there), they give the time back.
    booker.get_by_role("link", name="Anuluj i wróć").click()
    booker.wait_for_url(re.compile(rf"/{clinic.slug}/bookings/[0-9a-f-]+/cancelled"))
    booker.locator('#outcome[data-outcome="held"]').wait_for()
    assert cell.get_attribute("data-state") == "taken"
    booker.get_by_role("button", name="Zwolnij ten termin").click()
    booker.locator('#outcome[data-outcome="released"]').wait_for()
    shots(booker, "booker-cancelled")

    eventually(lambda: cell.get_attribute("data-state") == "free", what="cell free again live")
    assert watcher.url == watcher_url
    # ... and the freed cell is a working link again.
    cell.locator("a").click()
    watcher.locator("#book form").wait_for()
    assert watcher.locator('#book input[name="start"]').input_value() == start
    shots(watcher, "watcher-free-again")


def test_two_patients_race_for_one_slot(new_context, make_clinic, live, shots):
    clinic = make_clinic()
    doctor, visit = clinic.doctors[0], clinic.visits["long"]
    a, b = new_context().new_page(), new_context().new_page()
    week = _week_after(a, clinic.slug)
    a.goto(clinic_url(clinic.slug, doctor, visit, week))
    start = pick_free_slot(a, index=5)
    b.goto(a.url)
    b.locator("#book form").wait_for()
    fill_booking(a, "Ala Pierwsza", f"race-a-{uuid.uuid4().hex[:8]}@example.com")
    fill_booking(b, "Ola Druga", f"race-b-{uuid.uuid4().hex[:8]}@example.com")
    shots(a, "a-form")

    # Both press the button at about the same time (neither waits for its navigation).
    a.locator('#book button[type="submit"]').click(no_wait_after=True)
    b.locator('#book button[type="submit"]').click(no_wait_after=True)

    def outcome(page) -> str | None:
        if page.url.startswith(live.stripe_url) and page.locator("#card").count():
            return "checkout"
        if page.locator('main [data-error="slot_taken"]').count():
            return "taken"
        return None

    results = eventually(lambda: (lambda r: r if None not in r else None)(
        (outcome(a), outcome(b))), what="both submissions answered")
    assert sorted(results) == ["checkout", "taken"], results
    loser = a if results[0] == "taken" else b
    winner = b if loser is a else a
    shots(winner, "winner-checkout")
    shots(loser, "loser-taken")

    # The loser is told plainly, and the refreshed grid shows the slot taken, others free.
    message = loser.locator('main p[role="alert"][data-error="slot_taken"]')
    assert message.is_visible()
    assert slot_cell(loser, start).get_attribute("data-state") == "taken"
    assert loser.locator("[data-slot][data-state=free] a").count() > 0
    # What the loser typed is kept, with the week's other free times to choose from.
    assert loser.locator("#f-name").input_value() == ("Ala Pierwsza" if loser is a else "Ola Druga")
    assert loser.locator('#book select[name="start"] option').count() > 0
    assert loser.locator(f'#book select[name="start"] option[value="{start}"]').count() == 0
