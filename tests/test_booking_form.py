"""Hostile and broken booking forms: always a clear 4xx, nothing written, nothing
reflected unescaped."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import httpx
import pytest

from helpers import book, csrf_token, form, free_starts, next_week, owner_sql

XSS = '<script>alert(1)</script>"\'><img src=x onerror=alert(2)>'


@pytest.fixture
def good(client, clinic):
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    start = free_starts(client, clinic.slug, doctor, visit, next_week(client, clinic.slug))[0]
    return form(doctor, visit, start, csrf_token(client, clinic.slug, doctor, visit, start))


def _nothing_written(pg, clinic):
    assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.bookings") == [(0,)]


@pytest.mark.parametrize(("field", "value", "code"), [
    ("name", "", "required"),
    ("name", "x" * 201, "invalid_name"),
    ("name", "bad\x00name", "invalid_name"),
    ("name", XSS * 5, "invalid_name"),
    ("name", "\ufffd\ufffd", "invalid_name"),
    ("email", "not-an-email", "invalid_email"),
    ("email", "a@b", "invalid_email"),
    ("email", "x" * 300 + "@example.com", "invalid_email"),
    ("phone", "call me maybe", "invalid_phone"),
    ("start", "tomorrow", "invalid_start"),
    ("start", "2030-01-01T10:00:00", "invalid_start"),  # no offset: ambiguous
    ("start", "9999-12-31T23:59:59Z", "invalid_start"),
])
def test_invalid_fields_are_422_with_the_field_named(client, pg, clinic, good, field, value, code):
    r = client.post(f"/{clinic.slug}/bookings", data={**good, field: value})
    assert r.status_code == 422, r.text[-300:]
    assert 'data-error="invalid"' in r.text and f'data-field-error="{field}"' in r.text
    assert "<script>alert(1)" not in r.text and "<img src=x" not in r.text
    _nothing_written(pg, clinic)


def test_every_field_error_is_shown_at_once(client, pg, clinic, good):
    r = client.post(f"/{clinic.slug}/bookings", data={**good, "name": "", "email": "x", "phone": "?"})
    assert r.status_code == 422
    for f in ("name", "email", "phone"):
        assert f'data-field-error="{f}"' in r.text


def test_xss_in_a_valid_name_is_escaped_on_the_page(client, clinic, good, pg):
    r = client.post(f"/{clinic.slug}/bookings", data={**good, "name": "Ann <b>Bold</b>", "email": "bad"})
    assert r.status_code == 422 and "<b>Bold</b>" not in r.text and "&lt;b&gt;Bold" in r.text


@pytest.mark.parametrize("minutes", [10, -30, 24 * 60 * 7 * 30])
def test_starts_off_the_grid_or_too_far_are_422(client, pg, clinic, good, minutes):
    start = datetime.fromisoformat(good["start"].replace("Z", "+00:00")) + timedelta(minutes=minutes)
    r = client.post(f"/{clinic.slug}/bookings", data={**good, "start": start.isoformat()})
    assert r.status_code == 422 and 'data-error="slot_not_offered"' in r.text
    _nothing_written(pg, clinic)


def test_past_start_is_422(client, pg, clinic, good):
    r = client.post(f"/{clinic.slug}/bookings", data={**good, "start": "2021-03-02T09:00:00Z"})
    assert r.status_code == 422
    _nothing_written(pg, clinic)


def test_another_clinics_doctor_or_visit_is_404(client, pg, make_clinic, clinic, good):
    other = make_clinic()
    for field, value in (("doctor_id", other.doctors[0]), ("visit_type_id", other.visits["short"])):
        r = client.post(f"/{clinic.slug}/bookings", data={**good, field: str(value)})
        assert r.status_code == 404, (field, r.status_code)
    _nothing_written(pg, clinic)
    _nothing_written(pg, other)


@pytest.mark.parametrize("value", ["not-a-uuid", "", "x" * 100])
def test_malformed_ids(client, pg, clinic, good, value):
    r = client.post(f"/{clinic.slug}/bookings", data={**good, "doctor_id": value})
    assert r.status_code in (404, 422)
    _nothing_written(pg, clinic)


def test_unknown_clinic_is_404(client, good):
    assert client.post("/no-such-clinic/bookings", data=good).status_code == 404


def test_bad_utf8_and_huge_bodies(client, pg, clinic, good):
    raw = "&".join(f"{k}={v}" for k, v in good.items() if k != "name") + "&name=%FF%FE%FD"
    r = client.post(f"/{clinic.slug}/bookings", content=raw.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert 400 <= r.status_code < 500
    huge = client.post(f"/{clinic.slug}/bookings", data={**good, "name": "x" * 200_000})
    assert huge.status_code == 413
    _nothing_written(pg, clinic)


def test_wrong_content_type_is_4xx(client, clinic, good):
    r = client.post(f"/{clinic.slug}/bookings", json=good)
    assert 400 <= r.status_code < 500


def _value(page: str, name: str) -> str | None:
    m = re.search(rf'<input id="f-{name}" name="{name}"[^>]*value="([^"]*)"', page)
    return html.unescape(m.group(1)) if m else None


TYPED = {"name": "Zofia Żółkiewska", "email": "zofia@example.com", "phone": "+48 600 700 800"}


def test_a_field_error_keeps_the_rest_and_points_at_the_field(client, pg, clinic, good):
    r = client.post(f"/{clinic.slug}/bookings", data={**good, **TYPED, "email": "zofia@"})
    assert r.status_code == 422
    assert _value(r.text, "name") == TYPED["name"] and _value(r.text, "phone") == TYPED["phone"]
    assert _value(r.text, "email") == "zofia@"
    field = re.search(r'<input id="f-email"[^>]*>', r.text).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="e-email"' in field
    assert "autofocus" in field  # the first field in error takes the focus
    assert 'id="e-email" data-field-error="email"' in r.text
    assert "autofocus" not in re.search(r'<input id="f-name"[^>]*>', r.text).group(0)


def test_a_slot_taken_meanwhile_keeps_what_was_typed_and_offers_other_times(client, server, pg,
                                                                            clinic, good):
    with httpx.Client(base_url=server.url) as other:
        first, _ = book(other, clinic, start=good["start"], email="first@example.com")
    assert first.status_code == 303
    r = client.post(f"/{clinic.slug}/bookings", data={**good, **TYPED})
    assert r.status_code == 409 and 'data-error="slot_taken"' in r.text
    for name, value in TYPED.items():
        assert _value(r.text, name) == value, name
    offered = re.findall(r'<option value="([^"]+)"', re.search(
        r'<select id="f-start" name="start".*?</select>', r.text, re.S).group(0))
    assert offered and good["start"] not in offered
    # the patient picks another time and sends the very same form again
    again = client.post(f"/{clinic.slug}/bookings", data={
        **good, **TYPED, "start": offered[0],
        "_csrf_token": re.search(r'name="_csrf_token" value="([^"]+)"', r.text).group(1)})
    assert again.status_code == 303


def test_a_slot_taken_before_this_process_heard_of_it_is_answered_as_taken(
        client, server, clinic, good, monkeypatch):
    """The hold's notification has not reached this process yet, so its shared grid still
    shows the time free: the answer must not offer or mark that time all the same."""
    grids = server.app.state.live.grids
    week = next_week(client, clinic.slug)
    assert f'data-start="{good["start"]}" data-state="free"' in client.get(
        f"/{clinic.slug}/slots", params={"doctor": good["doctor_id"],
                                         "visit": good["visit_type_id"], "week": week}).text
    monkeypatch.setattr(grids, "changed", lambda tenant, doctor: None)  # deaf to this change
    with httpx.Client(base_url=server.url) as other:
        first, _ = book(other, clinic, start=good["start"], email="first@example.com")
    assert first.status_code == 303
    misses = grids.misses
    r = client.post(f"/{clinic.slug}/bookings", data={**good, **TYPED})
    assert r.status_code == 409 and 'data-error="slot_taken"' in r.text
    assert grids.misses == misses  # answered from the shared grid, as it is
    assert "Zarezerwuj tę wizytę" not in r.text and "Wybierz inny termin" in r.text
    assert '<a class="slot free" aria-current="true"' not in r.text  # no time marked as chosen
    offered = re.findall(r'<option value="([^"]+)"', re.search(
        r'<select id="f-start" name="start".*?</select>', r.text, re.S).group(0))
    assert offered and good["start"] not in offered
    for name, value in TYPED.items():
        assert _value(r.text, name) == value, name


def test_an_expired_form_keeps_its_values_and_works_when_sent_again(client, pg, clinic, good):
    r = client.post(f"/{clinic.slug}/bookings", data={**good, **TYPED, "_csrf_token": "stale"})
    assert r.status_code == 403 and 'data-error="form_expired"' in r.text
    for name, value in TYPED.items():
        assert _value(r.text, name) == value, name
    _nothing_written(pg, clinic)
    token = re.search(r'name="_csrf_token" value="([^"]+)"', r.text).group(1)
    assert client.post(f"/{clinic.slug}/bookings", data={**good, **TYPED, "_csrf_token": token}
                       ).status_code == 303


def test_a_browser_without_the_cookie_gets_one_with_the_form_again(server, clinic, good):
    with httpx.Client(base_url=server.url) as fresh:  # no CSRF cookie at all
        r = fresh.post(f"/{clinic.slug}/bookings", data={**good, **TYPED})
        assert r.status_code == 403 and "csrftoken" in fresh.cookies
        token = re.search(r'name="_csrf_token" value="([^"]+)"', r.text).group(1)
        ok = fresh.post(f"/{clinic.slug}/bookings", data={**good, **TYPED, "_csrf_token": token})
        assert ok.status_code == 303


@pytest.mark.parametrize("name", [
    "Ann\u202eevil",          # right-to-left override: displays reversed
    "Ann\u200bBob",           # zero-width space
    "Ann\u2066x\u2069",       # isolates
    "\ufeffAnn",              # byte-order mark
    "Ann\u009fBob",           # a C1 control
])
def test_invisible_and_direction_characters_in_names_are_refused(client, pg, clinic, good, name):
    r = client.post(f"/{clinic.slug}/bookings", data={**good, "name": name})
    assert r.status_code == 422 and 'data-field-error="name"' in r.text
    _nothing_written(pg, clinic)


def test_names_are_stored_in_one_normal_form(client, pg, clinic, good):
    decomposed = "Zoe\u0301  Nowak"  # e + combining acute, two spaces
    assert client.post(f"/{clinic.slug}/bookings", data={**good, "name": decomposed}).status_code == 303
    assert owner_sql(pg.owner, clinic.id, "select patient_name from dentbook.bookings") == [
        ("Zo\u00e9 Nowak",)]
