"""The staff dashboard's live stream: only with a session, only the clinic's own rows."""

from __future__ import annotations

import time

import httpx

from dentbook.live.fanout import clinic_key
from dentbook.staff import COOKIE as STAFF_COOKIE
from dentbook.web import streams
from helpers import SseClient, book, wait_for
from staff_helpers import add_staff, signed_in


def _hold(client, clinic, name):
    r, _ = book(client, clinic, name=name, email=f"{name.lower()}@example.com")
    assert r.status_code == 303


def test_stream_requires_a_session(client, clinic):
    assert client.get(f"/{clinic.slug}/staff/events").status_code == 401
    r = client.get(f"/{clinic.slug}/staff/events", cookies={STAFF_COOKIE: "x" * 43})
    assert r.status_code == 401


def test_new_holds_appear_live_and_never_another_clinics(pg, server, make_clinic):
    a, b = make_clinic(), make_clinic()
    with httpx.Client(base_url=server.url, timeout=30) as staff_browser, \
            httpx.Client(base_url=server.url, timeout=30) as patient:
        token = signed_in(staff_browser, a.slug, add_staff(pg, a))
        sse = SseClient(f"{server.url}/{a.slug}/staff/events",
                        headers={"Cookie": f"{STAFF_COOKIE}={token}"})
        try:
            wait_for(lambda: any("data-empty" in d for _, d in sse.messages), what="first state")
            _hold(patient, b, "Bravo")
            _hold(patient, a, "Alfa")
            wait_for(lambda: any("Alfa" in d for _, d in sse.messages), what="A's new hold")
            wire = "".join(d for _, d in sse.messages)
            assert 'data-status="pending"' in wire
            assert "Bravo" not in wire and "bravo@example.com" not in wire
        finally:
            sse.close()


def test_a_staff_stream_ends_whole_when_its_lifetime_is_up(pg, server, clinic, monkeypatch):
    """The browser is made to reconnect (and its session checked again): the stream ends as
    a complete HTTP response, not a cut connection, and is no longer counted."""
    monkeypatch.setattr(streams, "STAFF_STREAM_SECONDS", 1.0)
    fanout = server.app.state.live.fanout

    def watching_this_clinic() -> int:  # the suite's other streams are on other clinics
        return sum(len(fanout.topics.get(t, ())) for t in fanout.watching(clinic_key(clinic.id)))
    with httpx.Client(base_url=server.url, timeout=30) as staff_browser:
        token = signed_in(staff_browser, clinic.slug, add_staff(pg, clinic))
        with staff_browser.stream("GET", f"/{clinic.slug}/staff/events",
                                  cookies={STAFF_COOKIE: token}) as r:
            assert r.status_code == 200
            assert watching_this_clinic() == 1
            started = time.monotonic()
            lines = list(r.iter_lines())  # to the end; a cut connection would raise here
        assert time.monotonic() - started >= 0.9
        assert any(line.startswith("data: ") for line in lines)
    wait_for(lambda: watching_this_clinic() == 0, what="the stream unsubscribed")
