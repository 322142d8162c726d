"""Live streams build their headers per response: a crowd of first visits (no cookies)
must not hand their CSRF cookies to the next visitor, whose forms would then fail."""

from __future__ import annotations

import httpx

from helpers import CSRF, csrf_token, form, free_starts, next_week
from staff_helpers import add_staff, signed_in

CROWD = 40


def _open_stream(client: httpx.Client, url: str) -> list[str]:
    """Open a stream as a browser does (with the client's cookies), read its headers and
    close it; returns its Set-Cookie headers (the client's cookie jar takes them too)."""
    with client.stream("GET", url) as r:
        assert r.status_code == 200
        return r.headers.get_list("set-cookie")


def test_cookieless_crowd_leaves_forms_and_sign_out_working(pg, server, clinic):
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        week = next_week(browser, clinic.slug)
        url = f"/{clinic.slug}/events?doctor={doctor}&visit={visit}&week={week}"
        # First visits: no cookies at all; each may get its own CSRF cookie, never others'.
        given = []
        for _ in range(CROWD):
            with httpx.Client(base_url=server.url, timeout=30) as stranger:
                given.append(len(_open_stream(stranger, url)))

        # A normal browser: the booking page (a deep link to a slot), then its live stream,
        # then the form it already shows is submitted.
        start = free_starts(browser, clinic.slug, doctor, visit, week)[0]
        token = csrf_token(browser, clinic.slug, doctor, visit, start)
        _open_stream(browser, url)
        r = browser.post(f"/{clinic.slug}/bookings", data=form(doctor, visit, start, token))
        assert r.status_code == 303, r.text[-300:]

        # Staff: the dashboard, its stream, then sign out with the page's form.
        signed_in(browser, clinic.slug, add_staff(pg, clinic))
        token = CSRF.search(browser.get(f"/{clinic.slug}/staff").text)
        assert token
        _open_stream(browser, f"/{clinic.slug}/staff/events")
        out = browser.post(f"/{clinic.slug}/staff/logout", data={"_csrf_token": token.group(1)})
        assert out.status_code == 303, out.text[-300:]
        assert max(given) <= 1  # each stranger got at most its own cookie
