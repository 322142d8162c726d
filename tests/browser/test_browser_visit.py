"""Scenario 8 — the patient's visit after payment, in Chromium: book and pay, find the
confirmation in the local mail sink's inbox (/dev/mail), follow the link in it to the
visit page, and cancel there; the deposit comes back and the page says so."""

from __future__ import annotations

import email
import re
import uuid
from email.policy import default

import httpx
import pytest
from browser_kit import book_and_pay, describe, run_axe

pytestmark = pytest.mark.browser


def test_from_payment_to_the_inbox_to_cancelling(new_context, make_clinic, live, shots):
    clinic = make_clinic()
    address = f"inbox-{uuid.uuid4().hex[:8]}@example.com"
    page = new_context(bypass_csp=True).new_page()  # axe runs on the visit page
    book_and_pay(page, live.stripe_url, clinic.slug, "Iga Inbox", address)
    page.locator('#outcome[data-outcome="confirmed"] [data-visit-link]').wait_for()
    shots(page, "return-confirmed")

    # The dev inbox lists what the sink caught; the patient's confirmation is there.
    # The e-mail leaves after the webhook's commit: the inbox may be opened before it lands.
    row = page.locator(f'tr[data-mail]:has-text("{address}")').first
    for _ in range(60):
        page.goto("/dev/mail?lang=en")
        if row.count():
            break
        page.wait_for_timeout(500)
    row.wait_for(timeout=5_000)
    shots(page, "dev-inbox")
    raw = httpx.get(live.url + row.locator("a").get_attribute("href"), timeout=10).content
    text = email.message_from_bytes(raw, policy=default).get_body(("plain",)).get_content()
    link = re.search(rf"{re.escape(live.url)}(/{clinic.slug}/visits/[A-Za-z0-9_-]{{43}})", text)
    assert link, "no visit link in the e-mail"

    # What a patient's mail client does with the link: open it.
    page.goto(link.group(1))
    visit = page.locator("[data-visit][data-status=confirmed]")
    visit.wait_for()
    violations = run_axe(page)
    assert not violations, describe(violations)
    shots(page, "visit-page")
    page.get_by_role("button", name=re.compile("Odwołaj|Cancel")).click()
    page.locator("[data-done=cancelled]").wait_for()
    page.locator("[data-visit][data-status=cancelled]").wait_for()
    # the refund is made after the commit; the page shows it when it has been
    for _ in range(40):
        if page.locator("[data-visit][data-refunded]").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("[data-visit]").get_attribute("data-refunded") == "5000"
    shots(page, "visit-cancelled")
