"""Scenario 5 — Polish and English: every visible string on the clinic page, the booking
form, the checkout return page and the staff pages changes with the header's PL/EN links
(`?lang=`), dates and money are formatted per locale, and the choice is remembered.

The check compares `document.body.innerText` in both languages line by line: once proper
names, e-mail addresses, numbers and the allowed words are taken out, a line left with
words that reads the same in both languages was not translated; English words on the
Polish page, or Polish words on the English one, are reported too."""

from __future__ import annotations

import re
import uuid

import pytest
from browser_kit import (
    book_and_pay,
    fill_booking,
    pay_card,
    pick_free_slot,
    staff_sign_in,
    submit_booking,
    visible_text,
    wait_checkout,
    wait_outcome,
)

from dentbook import demo

pytestmark = pytest.mark.browser

ALLOWED = ["dentbook", "Stripe", "E-mail", "PL", "EN", "min", "Europe/Warsaw"]
EMAIL = re.compile(r"[\w.+-]+@[\w.-]+")
NUMBERISH = re.compile(r"[\d:.,/–\-·→←()%+]+")
PL_MONTHS = ("stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października "
             "listopada grudnia").split()
EN_MONTHS = ("January February March April May June July August September October November "
             "December").split()
PL_DAYS = "poniedziałek wtorek środa czwartek piątek sobota niedziela".split()
EN_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
EN_WORDS = set(("the and your you of is this please time times week free book booking visit "
                "deposit doctor pay payment next previous sign staff appointment appointments "
                "confirmed back choose show day status patient phone name full hold held with "
                "for are we it not").split()) | {m.lower() for m in EN_MONTHS + EN_DAYS}
PL_WORDS = set(("i w na się dla od do termin terminy wizyta wizyty zaliczka tydzień lekarz "
                "wolne pokaż wróć twoja rezerwacja zarezerwuj zapłać imię nazwisko telefon "
                "godziny strefie kliniki brak").split()) | set(PL_MONTHS) | set(PL_DAYS)
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def _residue(line: str, names: list[str]) -> str:
    """The line without proper names, e-mail addresses, numbers and allowed words."""
    for name in sorted(names, key=len, reverse=True):
        line = line.replace(name, " ")
    line = EMAIL.sub(" ", line)
    for word in ALLOWED:
        line = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", " ", line)
    line = NUMBERISH.sub(" ", line)
    return " ".join(WORD.findall(line))


def untranslated(pl: str, en: str, names: list[str]) -> list[str]:
    """Human-readable problems: lines identical in both languages, foreign words."""
    problems = []
    en_lines = {ln.strip() for ln in en.splitlines()}
    for line in (ln.strip() for ln in pl.splitlines()):
        rest = _residue(line, names)
        if rest and line in en_lines:
            problems.append(f"same in PL and EN: {line!r}")
        english = [w for w in rest.split() if w.lower() in EN_WORDS and w.lower() not in PL_WORDS]
        if english:
            problems.append(f"English on the PL page: {line!r} ({', '.join(english)})")
    for line in (ln.strip() for ln in en.splitlines()):
        rest = _residue(line, names)
        polish = [w for w in rest.split() if w.lower() in PL_WORDS - EN_WORDS
                  or re.search(r"[ąćęłńóśźżĄĆĘŁŃÓŚŹŻ]", w)]
        if polish:
            problems.append(f"Polish on the EN page: {line!r} ({', '.join(polish)})")
    return problems


def both_languages(page, shots, step: str) -> tuple[str, str]:
    """Switch with the header links: PL, then EN; the visible text of each."""
    texts = {}
    for lang in ("pl", "en"):
        page.locator(f'header nav a[hreflang="{lang}"]').click()
        page.wait_for_url(re.compile(rf"[?&]lang={lang}"))
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator(f'header nav a[hreflang="{lang}"]').get_attribute("aria-current") == "true"
        texts[lang] = visible_text(page)
        shots(page, f"{step}-{lang}")
    return texts["pl"], texts["en"]


def assert_dates(pl: str, en: str, where: str) -> None:
    assert any(m in pl for m in PL_MONTHS), f"{where}: no Polish month name on the PL page"
    assert not any(m in pl for m in EN_MONTHS), f"{where}: English month name on the PL page"
    assert any(m in en for m in EN_MONTHS), f"{where}: no English month name on the EN page"
    assert not any(m in en for m in PL_MONTHS), f"{where}: Polish month name on the EN page"


# Proper names, and the demo clinics' own details (an address is not translated).
DEMO_NAMES = ["Klinika Alfa", "Klinika Beta", "dr Anna Nowak", "dr Piotr Kowalski", "Zofia Wójcik",
              *(detail for c in demo.CLINICS.values() for detail in c["details"])]


def test_language_switch_patient_pages(new_context, live, shots):
    page = new_context().new_page()
    page.goto("/klinika-alfa")
    page.goto(page.locator("#grid a[rel=next]").get_attribute("href"))
    problems: list[str] = []

    pl, en = both_languages(page, shots, "clinic")
    problems += untranslated(pl, en, DEMO_NAMES)
    assert_dates(pl, en, "clinic page")
    assert "zł" in pl and "PLN" in en  # money per locale
    assert any(d in pl.lower() for d in ("pon.", "wt.", "śr.")) and "Mon" in en  # day headers

    pick_free_slot(page, index=1)
    pl, en = both_languages(page, shots, "form")
    problems += untranslated(pl, en, DEMO_NAMES)
    assert_dates(pl, en, "booking form")
    assert any(d in pl for d in PL_DAYS) and any(d in en for d in EN_DAYS)

    # Errors on the form are translated too (each language chosen before submitting: the
    # header links of the answer to a POST are broken, see the test below).
    form_url = page.url
    errors = {}
    for lang in ("pl", "en"):
        page.goto(re.sub(r"lang=\w+", f"lang={lang}", form_url))
        page.locator('#book button[type="submit"]').click()
        page.locator("[data-field-error]").first.wait_for()
        errors[lang] = visible_text(page)
        shots(page, f"form-errors-{lang}")
    problems += untranslated(errors["pl"], errors["en"], DEMO_NAMES)
    page.goto(re.sub(r"lang=\w+", "lang=pl", form_url))
    fill_booking(page, "Zofia Wójcik", f"lang-{uuid.uuid4().hex[:8]}@example.com")
    submit_booking(page)
    wait_checkout(page, live.stripe_url)
    pay_card(page)
    page.wait_for_url(re.compile(r"/return\?"))
    wait_outcome(page, "confirmed")
    pl, en = both_languages(page, shots, "return")
    problems += untranslated(pl, en, DEMO_NAMES)
    assert_dates(pl, en, "return page")
    wait_outcome(page, "confirmed")

    # The choice is remembered (cookie) on the next page, with no ?lang= in the address.
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Book a dental visit" in visible_text(page)

    assert not problems, "\n".join(problems)


def test_language_links_after_a_failed_booking(new_context, live):
    page = new_context().new_page()
    page.goto("/klinika-alfa")
    page.goto(page.locator("#grid a[rel=next]").get_attribute("href"))
    pick_free_slot(page, index=0)
    page.locator('#book button[type="submit"]').click()
    page.locator("[data-field-error]").first.wait_for()
    response = None
    with page.expect_navigation() as nav:
        page.locator('header nav a[hreflang="en"]').click()
    response = nav.value
    assert response.status == 200, f"{page.url} answered {response.status}"
    assert page.locator("#book").count() == 1


def test_language_switch_staff_pages(new_context, live, shots):
    page = new_context().new_page()
    patient = "Zofia Wójcik"
    bid = book_and_pay(new_context().new_page(), live.stripe_url, "klinika-alfa", patient,
                       f"staff-lang-{uuid.uuid4().hex[:8]}@example.com", index=4)
    page.goto("/klinika-alfa/staff/login")
    assert page.locator('input[name="password"]').count() == 1, "no staff sign-in page"
    problems: list[str] = []
    pl, en = both_languages(page, shots, "login")
    problems += untranslated(pl, en, DEMO_NAMES)

    staff_sign_in(page, "klinika-alfa", "alfa@klinika.test")
    page.locator(f'[data-booking="{bid}"]').wait_for()
    pl, en = both_languages(page, shots, "dashboard")
    problems += untranslated(pl, en, [*DEMO_NAMES, *_patient_names(page)])
    assert_dates(pl, en, "staff dashboard")
    assert not problems, "\n".join(problems)


def _patient_names(page) -> list[str]:
    return [t.strip() for t in page.locator('[data-booking] td[data-label]:nth-child(5)')
            .all_inner_texts() if t.strip()]
