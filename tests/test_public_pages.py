"""The public pages over real HTTP: directory, clinic calendar, fragments, the §5 hooks,
localized 404s, and the language switch."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helpers import next_week


def test_directory_lists_the_demo_clinics(client):
    r = client.get("/")
    assert r.status_code == 200
    assert 'data-clinic="klinika-alfa"' in r.text and 'data-clinic="klinika-beta"' in r.text


def test_clinic_page_shows_a_week_of_slots_with_hooks(client, clinic):
    r = client.get(f"/{clinic.slug}")
    assert r.status_code == 200
    slots = re.findall(r'<li id="[^"]+" data-slot data-doctor="([^"]+)" data-start="([^"]+)" '
                       r'data-state="(free|taken)"', r.text)
    assert slots, "no slot elements"
    assert {d for d, _, _ in slots} == {str(clinic.doctors[0])}
    now = datetime.now(UTC)
    for _, start, _ in slots:
        instant = datetime.fromisoformat(start.replace("Z", "+00:00"))
        assert instant >= now + timedelta(hours=2)
    # free slots are plain links to the booking form: no JavaScript needed
    assert re.search(r'<a class="slot free" href="/' + clinic.slug + r'\?[^"]*start=', r.text)


def test_week_navigation_and_fragment(client, clinic):
    page = client.get(f"/{clinic.slug}")
    nxt = re.search(r'href="([^"]+)"[^>]*rel="next"', page.text)
    assert nxt
    later = client.get(nxt.group(1).replace("&amp;", "&"))
    assert later.status_code == 200
    fragment = client.get(f"/{clinic.slug}/slots", params={"doctor": str(clinic.doctors[0]),
                                                          "visit": str(clinic.visits["long"])})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith("{#") is False
    assert "<html" not in fragment.text and 'id="grid"' in fragment.text


def test_unknown_clinic_is_a_localized_404(client):
    r = client.get("/no-such-clinic", headers={"Accept-Language": "en"})
    assert r.status_code == 404 and 'data-error="not_found"' in r.text
    assert "We could not find" in r.text
    pl = client.get("/no-such-clinic", headers={"Accept-Language": "pl-PL,pl;q=0.9"})
    assert pl.status_code == 404 and 'lang="pl"' in pl.text
    assert "Nie znaleźliśmy" in pl.text


@pytest.mark.parametrize("params", [
    {"doctor": "not-a-uuid"}, {"doctor": str(uuid.uuid4())}, {"visit": "x" * 500},
])
def test_unknown_doctor_or_visit_is_404(client, clinic, params):
    assert client.get(f"/{clinic.slug}", params=params).status_code == 404


def test_another_clinics_doctor_is_404(client, make_clinic):
    a, b = make_clinic(), make_clinic()
    assert client.get(f"/{a.slug}", params={"doctor": str(b.doctors[0])}).status_code == 404


@pytest.mark.parametrize("week", ["2026-13-01", "yesterday", "2026-1-1", "\x00"])
def test_bad_week_is_400(client, clinic, week):
    r = client.get(f"/{clinic.slug}", params={"week": week})
    assert r.status_code == 400 and 'data-error="invalid_week"' in r.text


def test_far_weeks_are_clamped_not_errors(client, clinic):
    for week in ("1999-01-04", "2999-01-04"):
        assert client.get(f"/{clinic.slug}", params={"week": week}).status_code == 200


def test_language_switch_is_remembered(client, clinic):
    en = client.get(f"/{clinic.slug}", params={"lang": "en"})
    assert 'lang="en"' in en.text and "Next week" in en.text
    assert en.cookies.get("lang") == "en"
    again = client.get(f"/{clinic.slug}")
    assert 'lang="en"' in again.text
    pl = client.get(f"/{clinic.slug}", params={"lang": "pl"})
    assert 'lang="pl"' in pl.text and "Następny tydzień" in pl.text


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_security_headers_on_every_response(client):
    for path in ("/", "/no-such-clinic", "/static/app.css"):
        h = client.get(path).headers
        assert "script-src 'self'" in h["content-security-policy"]
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"


def test_language_links_on_an_odd_path_stay_on_this_site(client):
    for path in ("/%5Cevil.example", "/%5C%5Cevil.example/x", "//evil.example", "/%2F%2Fevil.example"):
        r = client.get(path)
        links = re.findall(r'<a href="([^"]*)"[^>]*hreflang', r.text)
        assert links == ["/?lang=pl", "/?lang=en"], (path, links)


def test_language_links_keep_the_page_and_its_choices(client, clinic):
    week = next_week(client, clinic.slug)
    page = client.get(f"/{clinic.slug}", params={"doctor": str(clinic.doctors[0]),
                                                  "visit": str(clinic.visits["long"]), "week": week})
    en = re.search(r'<a href="([^"]*)"[^>]*hreflang="en"', page.text).group(1)
    assert en.startswith(f"/{clinic.slug}?") and "lang=en" in en and f"week={week}" in en
    assert f"visit={clinic.visits['long']}" in en.replace("&amp;", "&")


def test_htmx_gets_the_fragment_history_restore_gets_the_page(client, clinic):
    htmx = client.get(f"/{clinic.slug}", headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and "<html" not in htmx.text and 'id="grid"' in htmx.text
    restore = client.get(f"/{clinic.slug}", headers={"HX-Request": "true",
                                                      "HX-History-Restore-Request": "true"})
    assert restore.status_code == 200 and "<html" in restore.text
    for r in (htmx, restore, client.get(f"/{clinic.slug}")):
        assert "HX-Request" in r.headers["vary"]


def test_changing_doctor_or_visit_keeps_the_week_and_the_address(client, clinic):
    week = next_week(client, clinic.slug)
    page = client.get(f"/{clinic.slug}", params={"week": week})
    # the picker's week travels with the grid (a form-associated hidden input)
    assert re.search(rf'<input type="hidden" name="week" form="picker" value="{week}">', page.text)
    grid = client.get(f"/{clinic.slug}/slots", params={
        "doctor": str(clinic.doctors[0]), "visit": str(clinic.visits["long"]), "week": week},
        headers={"HX-Request": "true"})
    pushed = grid.headers["hx-push-url"]
    assert pushed.startswith(f"/{clinic.slug}?") and f"week={week}" in pushed
    assert str(clinic.visits["long"]) in pushed and "/slots" not in pushed


def test_slot_links_say_the_day_and_week_links_keep_their_ids(client, clinic):
    page = client.get(f"/{clinic.slug}", params={"week": next_week(client, clinic.slug),
                                                  "lang": "en"})
    link = re.search(r'<a class="slot free"[^>]*>(.*?)</a>', page.text, re.S).group(1)
    day = re.search(r'<span class="sr">([^<]+), </span>', link)
    assert day and re.match(r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), ", day.group(1))
    assert 'id="week-next"' in page.text and 'id="week-prev"' in page.text
