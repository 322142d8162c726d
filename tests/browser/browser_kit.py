"""Helpers for the browser tests: what a patient does on the pages, screenshots, axe-core."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"

FREE = "[data-slot][data-state=free] a"
CHECKOUT = re.compile(r"^http://127\.0\.0\.1:\d+/(c/)?(pay/)?.*cs_")
RETURN = re.compile(r"/bookings/([0-9a-f-]{36})/return")
# Chromium reports every 4xx/5xx answer, including the deliberate 409/422 pages.
EXPECTED_STATUS = re.compile(r"Failed to load resource: the server responded with a status of "
                             r"(402|403|409|422)")


@dataclass
class Shots:
    folder: Path
    n: int = 0

    def __call__(self, page: Any, step: str) -> Path:
        self.n += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.n:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@dataclass
class Console:
    messages: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [m for m in self.messages if not EXPECTED_STATUS.search(m)]


def watch_console(ctx: Any) -> Console:
    """Collect console errors (CSP violations included) and uncaught exceptions."""
    found = Console()

    def on_console(msg: Any) -> None:
        where = (msg.location or {}).get("url", "")
        if where.endswith("/favicon.ico"):
            return  # no favicon is a cosmetic matter, reported separately
        if msg.type in ("error", "assert"):
            found.messages.append(f"console {msg.type} on {msg.page.url if msg.page else '?'}: "
                                  f"{msg.text}")

    ctx.on("console", on_console)
    ctx.on("weberror", lambda err: found.messages.append(f"page error: {err.error}"))
    return found


def week_of(href: str) -> str:
    m = re.search(r"week=(\d{4}-\d{2}-\d{2})", href)
    assert m, f"no week in {href}"
    return m.group(1)


def next_week(page: Any) -> str:
    """Follow the grid's `rel=next` link (htmx swap or full page); returns that week."""
    link = page.locator("#grid a[rel=next]")
    week = week_of(link.get_attribute("href"))
    link.click()
    page.locator(f'#grid[sse-connect*="week={week}"]').wait_for()
    return week


def clinic_url(slug: str, doctor: Any = None, visit: Any = None, week: str | None = None,
               lang: str | None = None) -> str:
    params = {k: str(v) for k, v in (("doctor", doctor), ("visit", visit), ("week", week),
                                      ("lang", lang)) if v}
    return f"/{slug}" + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def slot_cell(page: Any, start: str) -> Any:
    return page.locator(f'[data-slot][data-start="{start}"]')


def pick_free_slot(page: Any, index: int = 0) -> str:
    """Click a free slot (a plain link); returns its start (ISO 8601 UTC)."""
    link = page.locator(FREE).nth(index)
    start = link.locator("xpath=..").get_attribute("data-start")
    link.click()
    page.locator("#book form").wait_for()
    assert page.locator('#book input[name="start"]').input_value()
    return start


def fill_booking(page: Any, name: str, email: str, phone: str = "") -> None:
    page.get_by_label(re.compile(r"^(Imię i nazwisko|Full name)")).fill(name)
    page.locator("#f-email").fill(email)
    if phone:
        page.locator("#f-phone").fill(phone)


def submit_booking(page: Any) -> None:
    page.locator('#book button[type="submit"]').click()


def wait_checkout(page: Any, stripe_url: str) -> None:
    page.wait_for_url(f"{stripe_url}/**")
    page.locator("#card").wait_for()


def pay_card(page: Any, card: str = "4242 4242 4242 4242") -> None:
    page.locator("#card").fill(card)
    page.locator("#exp").fill("12 / 34")
    page.locator("#cvc").fill("123")
    page.locator('form:has(#card) button[type="submit"]').click()


def pay_delayed(page: Any, succeed: bool) -> None:
    # By value: the hosted page speaks the session's language (Polish in these tests).
    outcome = "delayed_success" if succeed else "delayed_failure"
    page.locator(f'input[value="{outcome}"]').check()
    page.locator('form:has(input[value^="delayed"]) button[type="submit"]').click()


def booking_id(url: str) -> str:
    m = RETURN.search(url)
    assert m, f"not a return page: {url}"
    return m.group(1)


def wait_outcome(page: Any, outcome: str, timeout: float = 20_000) -> None:
    page.locator(f'#outcome[data-outcome="{outcome}"]').wait_for(timeout=timeout)


def run_axe(page: Any) -> list[dict[str, Any]]:
    """axe-core on the page (its context must bypass CSP); the serious/critical violations."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 200),
                                      summary: n.failureSummary}))}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=1, ensure_ascii=False)


def axe_clean(page: Any, shots: Any, step: str) -> None:
    """A screenshot of the step, then axe-core finds no serious or critical violation."""
    shots(page, step)
    violations = run_axe(page)
    assert not violations, f"axe on {step} ({page.url}):\n{describe(violations)}"


def tab_to(page: Any, selector: str, limit: int = 250) -> None:
    """Press Tab until the focused element matches `selector`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
    raise AssertionError(f"Tab never reached {selector} (stuck on "
                         f"{page.evaluate('document.activeElement.outerHTML.slice(0, 120)')})")


def visible_text(page: Any) -> str:
    return str(page.evaluate("document.body.innerText"))


eventually = wait_for  # the shared poller from tests/helpers.py


def staff_sign_in(page: Any, slug: str, email: str, password: str = "test") -> None:
    """Sign in on `/{slug}/staff/login` (fields `email`, `password`) and land on the dashboard."""
    page.goto(f"/{slug}/staff/login")
    page.locator('input[name="email"]').fill(email)
    page.locator('input[name="password"]').fill(password)
    page.locator('form:has(input[name="password"]) button[type="submit"]').click()
    # The dashboard itself, not any page under /staff (the sign-in form is one too): a
    # failed sign-in must fail here, or an isolation check after it proves nothing.
    page.wait_for_url(re.compile(rf"/{slug}/staff(\?[^/]*)?$"))
    page.locator("tbody#appointments").wait_for()


def staff_pages_exist(base_url: str, slug: str = "klinika-alfa") -> bool:
    import httpx

    return httpx.get(f"{base_url}/{slug}/staff/login", timeout=10).status_code == 200


def book_and_pay(page: Any, stripe_url: str, slug: str, name: str, email: str,
                 index: int = 0, query: str = "") -> str:
    """The whole patient path in one go (next week's `index`-th free slot, card 4242);
    returns the booking id once the return page says confirmed."""
    page.goto(f"/{slug}{query}")
    page.goto(page.locator("#grid a[rel=next]").get_attribute("href"))
    pick_free_slot(page, index)
    fill_booking(page, name, email)
    submit_booking(page)
    wait_checkout(page, stripe_url)
    pay_card(page)
    page.wait_for_url(RETURN)
    wait_outcome(page, "confirmed")
    return booking_id(page.url)
