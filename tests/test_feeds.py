"""Doctors' calendar feeds over real HTTP: `GET /{slug}/feeds/{token}.ics`, parsed with
`icalendar`. The doctor's confirmed visits (patients by initials only, never the treatment)
and blocked time, some weeks back to months ahead; ETag and If-None-Match (304);
Cache-Control private; REFRESH-INTERVAL. A rotated, unknown, malformed or other clinic's
token is 404, and only the token's SHA-256 is ever stored."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from icalendar import Calendar

from admin_helpers import staff_session
from helpers import owner_sql

FEED_LINK = re.compile(r'id="feed-link" type="text" readonly value="([^"]+)"')


def _row(pg, clinic, starts: timedelta, *, kind: str = "visit", status: str = "confirmed",
         name: str | None = "Zofia Maria Wiśniewska", doctor: int = 0, minutes: int = 30):
    start = datetime.now(UTC).replace(second=0, microsecond=0) + starts
    return owner_sql(
        pg.owner, clinic.id,
        "insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during, status,"
        " hold_expires_at, patient_name, patient_email, amount_minor, currency, kind,"
        " block_reason) values (%s, %s, %s, tstzrange(%s, %s), %s, now() + interval '1 hour',"
        " %s, %s, %s, 'pln', %s, %s) returning id",
        (clinic.id, clinic.doctors[doctor], clinic.visits["long"], start,
         start + timedelta(minutes=minutes), status, name if kind == "visit" else None,
         "zofia@example.test" if kind == "visit" else None, 5000 if kind == "visit" else 0,
         kind, "Szkolenie" if kind == "block" else None))[0][0]


def _new_feed(admin, doctor) -> str:
    r = admin.post(f"/doctors/{doctor}/feed")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    return FEED_LINK.search(r.text).group(1)


@pytest.fixture
def feed(server, pg, make_clinic):
    clinic = make_clinic(doctors=2)
    with staff_session(server, pg, clinic, "admin") as admin:
        link = _new_feed(admin, clinic.doctors[0])
    return clinic, httpx.URL(link).path


def test_the_feed_shows_visits_by_initials_and_blocks_as_blocked(client, pg, feed):
    clinic, path = feed
    visit = _row(pg, clinic, timedelta(days=3))
    block = _row(pg, clinic, timedelta(days=4), kind="block", minutes=120)
    recent = _row(pg, clinic, timedelta(days=-7), name="Jan Kowalski")
    hidden = [_row(pg, clinic, timedelta(days=5), status="pending", name="Hold Pending"),
              _row(pg, clinic, timedelta(days=6), status="cancelled", name="Anulowana Wizyta"),
              _row(pg, clinic, timedelta(days=3), doctor=1, name="Inny Lekarz"),
              _row(pg, clinic, timedelta(days=-60), name="Dawno Temu"),
              _row(pg, clinic, timedelta(days=400), name="Za Rok")]
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/calendar")
    assert "private" in r.headers["cache-control"] and r.headers["etag"].startswith('"')
    cal = Calendar.from_ical(r.content)
    assert cal["refresh-interval"].dt == timedelta(minutes=15)
    assert "dr Test 0" in str(cal["x-wr-calname"]) and clinic.slug in str(cal["x-wr-calname"])
    events = {str(e["uid"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {f"{b}@dentbook-feed" for b in (visit, block, recent)}
    assert str(events[f"{visit}@dentbook-feed"]["summary"]) == "Z. W."
    assert str(events[f"{recent}@dentbook-feed"]["summary"]) == "J. K."
    blocked = events[f"{block}@dentbook-feed"]
    assert str(blocked["summary"]) == "Zablokowane"
    assert blocked.decoded("dtend") - blocked.decoded("dtstart") == timedelta(minutes=120)
    body = r.text
    for secret in ("Zofia", "Wiśniewska", "Kowalski", "zofia@example.test", "Długa", "Long",
                   "Szkolenie", *(str(h) for h in hidden)):
        assert secret not in body, secret


def test_etag_and_if_none_match(client, pg, feed):
    clinic, path = feed
    _row(pg, clinic, timedelta(days=2))
    first = client.get(path)
    etag = first.headers["etag"]
    again = client.get(path)
    assert again.headers["etag"] == etag and again.content == first.content  # stable bytes
    unchanged = client.get(path, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag and "private" in unchanged.headers["cache-control"]
    assert client.get(path, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"something else"'}).status_code == 200
    # A change to the doctor's calendar is a new feed.
    _row(pg, clinic, timedelta(days=9), name="Ewa Nowak")
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert "E. N." in str([e["summary"] for e in Calendar.from_ical(changed.content).walk("VEVENT")])


def test_rotating_the_token_ends_the_old_address(server, client, pg, feed):
    clinic, path = feed
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    stored = owner_sql(pg.owner, clinic.id, "select feed_hash from dentbook.doctors where id = %s",
                       (clinic.doctors[0],))
    assert bytes(stored[0][0]) == hashlib.sha256(token.encode()).digest()  # only the hash
    with staff_session(server, pg, clinic, "admin") as admin:
        assert "data-feed-link" not in admin.get(f"/doctors/{clinic.doctors[0]}").text
        new_path = httpx.URL(_new_feed(admin, clinic.doctors[0])).path
        assert new_path != path
        assert client.get(path).status_code == 404
        assert client.get(new_path).status_code == 200
        assert admin.post(f"/doctors/{clinic.doctors[0]}/feed/delete").status_code == 303
        assert client.get(new_path).status_code == 404


def test_unknown_malformed_and_other_clinics_tokens_are_404(server, client, pg, feed, make_clinic):
    clinic, path = feed
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    other = make_clinic()
    for bad in (f"/{clinic.slug}/feeds/{'A' * 43}.ics", f"/{clinic.slug}/feeds/{token}",
                f"/{clinic.slug}/feeds/{token}.ics.ics", f"/{clinic.slug}/feeds/x.ics",
                f"/{clinic.slug}/feeds/{token[:-1]}%00.ics", f"/{clinic.slug}/feeds/.ics",
                f"/{other.slug}/feeds/{token}.ics", f"/no-such-clinic/feeds/{token}.ics"):
        r = client.get(bad)
        assert r.status_code == 404, bad
        assert 'data-error="not_found"' in r.text
    assert client.get(path).status_code == 200
