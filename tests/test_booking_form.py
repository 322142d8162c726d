"""Hostile and broken booking forms: always a clear 4xx, nothing written, nothing
reflected unescaped."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from helpers import csrf_token, form, free_starts, next_week, owner_sql

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
