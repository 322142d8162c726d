"""G3 and G4 end to end, through the real `stripe` library and the local Stripe service:
hold → Checkout → signed webhook → confirmed, and everything that can go wrong."""

from __future__ import annotations

import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from helpers import (
    STRIPE_KEY,
    Server,
    app_settings,
    book,
    booking_row,
    csrf_token,
    form,
    free_port,
    free_starts,
    next_week,
    owner_sql,
    session_of,
    wait_for,
)


def _book(client, clinic, **kwargs):
    return book(client, clinic, **kwargs)


def _status(pg, clinic, session):
    return booking_row(pg.owner, clinic.id, session)["status"]


def _wait_status(pg, clinic, session, status):
    wait_for(lambda: _status(pg, clinic, session) == status, what=f"booking {status}")
    return booking_row(pg.owner, clinic.id, session)


def _slot_state(client, clinic, start):
    page = client.get(f"/{clinic.slug}", params={"doctor": str(clinic.doctors[0]),
                                                  "visit": str(clinic.visits["short"]),
                                                  "week": next_week(client, clinic.slug)})
    m = re.search(rf'data-start="{re.escape(start)}" data-state="(\w+)"', page.text)
    return m.group(1) if m else None


def _audit(pg, clinic, booking_id):
    return owner_sql(pg.owner, clinic.id, "select from_status, to_status from dentbook.audit_log"
                     " where booking_id = %s order by id", (booking_id,))


def test_full_loop_confirms_and_a_replay_changes_nothing(client, pg, clinic, stripe_local):
    r, start = _book(client, clinic)
    assert r.status_code == 303, r.text[-500:]
    assert r.headers["location"].startswith(stripe_local.url + "/pay/cs_")
    session = session_of(r.headers["location"])
    assert _status(pg, clinic, session) == "pending"
    assert _slot_state(client, clinic, start) == "taken"
    # The Checkout page says what is being paid for, in the patient's language: the clinic,
    # the doctor, the visit's local date and time, and the amount.
    checkout = httpx.get(r.headers["location"], timeout=30).text
    local = datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(ZoneInfo("Europe/Warsaw"))
    assert clinic.slug in checkout and "dr Test 0" in checkout
    assert local.strftime("%H:%M") in checkout and f" {local.day} " in checkout
    assert "50,00\u00a0zł" in checkout and "Zaliczka" in checkout
    assert "Krótka" not in checkout  # never the treatment: Stripe needs no health data
    assert stripe_local.pay(session).status_code == 200
    row = _wait_status(pg, clinic, session, "confirmed")
    assert row["stripe_payment_intent_id"].startswith("pi_")
    trail = _audit(pg, clinic, row["id"])
    assert trail == [(None, "pending"), ("pending", "confirmed")]
    event = next(e for e in stripe_local.events(session) if e["type"] == "checkout.session.completed")
    for _ in range(3):
        stripe_local.http.post(f"/_test/events/{event['id']}/resend")
    wait_for(lambda: all(e["delivered"] for e in stripe_local.events(session)), what="redelivery")
    assert _status(pg, clinic, session) == "confirmed"
    assert _audit(pg, clinic, row["id"]) == trail
    page = client.get(f"/{clinic.slug}/bookings/{row['id']}/return", params={"session_id": session})
    assert 'data-outcome="confirmed"' in page.text


def test_hosted_page_declined_card_keeps_the_hold(client, pg, clinic, stripe_local):
    r, _ = _book(client, clinic)
    session = session_of(r.headers["location"])
    declined = httpx.post(r.headers["location"], data={"method": "card", "card": "4000 0000 0000 0002"})
    assert declined.status_code == 402 and 'data-error="card_declined"' in declined.text
    assert _status(pg, clinic, session) == "pending"
    paid = httpx.post(r.headers["location"], data={"method": "card", "card": "4242 4242 4242 4242"})
    assert paid.status_code == 303 and "/return?session_id=" + session in paid.headers["location"]
    _wait_status(pg, clinic, session, "confirmed")


def test_delayed_payment_processing_then_confirmed(client, pg, clinic, stripe_local):
    r, _ = _book(client, clinic)
    session = session_of(r.headers["location"])
    before = booking_row(pg.owner, clinic.id, session)
    stripe_local.pay(session, method="delayed_success")
    wait_for(lambda: booking_row(pg.owner, clinic.id, session)["payment_processing"], what="processing")
    processing = booking_row(pg.owner, clinic.id, session)
    assert processing["hold_expires_at"] > before["hold_expires_at"]  # kept while money travels
    page = client.get(f"/{clinic.slug}/bookings/{processing['id']}/return")
    assert processing["status"] == "confirmed" or 'data-outcome="processing"' in page.text
    _wait_status(pg, clinic, session, "confirmed")


def test_delayed_payment_failure_frees_the_slot(client, pg, clinic, stripe_local):
    r, start = _book(client, clinic)
    session = session_of(r.headers["location"])
    stripe_local.pay(session, method="delayed_failure")
    row = _wait_status(pg, clinic, session, "failed")
    assert _slot_state(client, clinic, start) == "free"
    page = client.get(f"/{clinic.slug}/bookings/{row['id']}/return")
    assert 'data-outcome="failed"' in page.text


def test_expired_session_frees_the_slot(client, pg, clinic, stripe_local):
    r, start = _book(client, clinic)
    session = session_of(r.headers["location"])
    stripe_local.http.post(f"/_test/sessions/{session}/expire_now")
    _wait_status(pg, clinic, session, "expired")
    assert _slot_state(client, clinic, start) == "free"


def _action(client, clinic, booking_id, action, page=None):
    """Press one of the hold's buttons (resume or release) on `page` (the cancel page)."""
    page = page or client.get(f"/{clinic.slug}/bookings/{booking_id}/cancelled").text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page).group(1)
    return client.post(f"/{clinic.slug}/bookings/{booking_id}/{action}",
                       data={"_csrf_token": token})


def test_cancel_url_asks_and_only_the_button_releases_the_hold(client, pg, clinic, stripe_local):
    r, start = _book(client, clinic)
    session = session_of(r.headers["location"])
    row = booking_row(pg.owner, clinic.id, session)
    for _ in range(2):  # a link preview, a prefetch, the patient reloading: nothing changes
        page = client.get(f"/{clinic.slug}/bookings/{row['id']}/cancelled")
        assert page.status_code == 200 and 'data-outcome="held"' in page.text
    assert _status(pg, clinic, session) == "pending"
    assert _slot_state(client, clinic, start) == "taken"
    released = _action(client, clinic, row["id"], "release", page.text)
    assert released.status_code == 303
    assert released.headers["location"] == f"/{clinic.slug}/bookings/{row['id']}/return"
    assert 'data-outcome="released"' in client.get(released.headers["location"]).text
    assert _status(pg, clinic, session) == "released"
    assert _slot_state(client, clinic, start) == "free"
    remote = stripe_local.http.get(f"/v1/checkout/sessions/{session}").json()
    assert remote["status"] == "expired"
    again = _action(client, clinic, row["id"], "release", page.text)
    assert again.status_code == 303 and _status(pg, clinic, session) == "released"


def test_a_patient_back_from_checkout_is_offered_their_own_hold(client, pg, clinic, server):
    r, _ = _book(client, clinic)
    checkout = r.headers["location"]
    row = booking_row(pg.owner, clinic.id, session_of(checkout))
    page = client.get(f"/{clinic.slug}")
    assert f'data-own-hold="{row["id"]}"' in page.text
    again = _action(client, clinic, row["id"], "resume", page.text)
    assert again.status_code == 303 and again.headers["location"] == checkout
    # another browser sees no such offer and cannot resume it, even knowing the address
    with httpx.Client(base_url=server.url) as other:
        assert "data-own-hold" not in other.get(f"/{clinic.slug}").text
        refused = _action(other, clinic, row["id"], "resume")
        assert refused.status_code == 409 and 'data-error="not_resumable"' in refused.text
        assert checkout not in refused.text
    assert _status(pg, clinic, session_of(checkout)) == "pending"


def test_knowing_the_patients_email_does_not_take_over_their_hold(client, pg, clinic, server):
    r, start = _book(client, clinic, email="owner@example.com")
    assert r.status_code == 303
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    with httpx.Client(base_url=server.url) as stranger:
        # the form of another, free slot gives the stranger a valid CSRF token
        other = free_starts(stranger, clinic.slug, doctor, visit, next_week(stranger, clinic.slug))[3]
        token = csrf_token(stranger, clinic.slug, doctor, visit, other)
        taken = stranger.post(f"/{clinic.slug}/bookings", data=form(
            doctor, visit, start, token, email="owner@example.com"))
    assert taken.status_code == 409 and 'data-error="slot_taken"' in taken.text
    assert r.headers["location"] not in taken.text
    assert _status(pg, clinic, session_of(r.headers["location"])) == "pending"


def test_late_payment_for_a_lapsed_hold_is_refunded_exactly_once(client, pg, clinic, stripe_local):
    first, start = _book(client, clinic, email="late@example.com")
    old = session_of(first.headers["location"])
    old_row = booking_row(pg.owner, clinic.id, old)
    owner_sql(pg.owner, clinic.id, "update dentbook.bookings set hold_expires_at = now() - interval"
              " '1 second' where id = %s", (old_row["id"],))
    assert _slot_state(client, clinic, start) == "free"
    second, _ = _book(client, clinic, email="next@example.com", start=start)
    assert second.status_code == 303  # the lapsed hold gave way just in time
    new = session_of(second.headers["location"])
    assert _status(pg, clinic, old) == "expired"
    # the old session's payment lands late; its webhook arrives three times, concurrently
    stripe_local.pay(old, force=True)
    refunded = _wait_status(pg, clinic, old, "refunded")
    event = next(e for e in stripe_local.events(old) if e["type"] == "checkout.session.completed")
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: stripe_local.http.post(f"/_test/events/{event['id']}/resend"), range(3)))
    wait_for(lambda: all(e["delivered"] for e in stripe_local.events(old)), what="redelivery")
    refunds = stripe_local.refunds(refunded["stripe_payment_intent_id"])
    assert len(refunds) == 1 and refunds[0]["id"] == refunded["stripe_refund_id"]
    assert refunded["paid_after_expiry"] is True
    assert _status(pg, clinic, new) == "pending"  # the new patient keeps the slot
    page = client.get(f"/{clinic.slug}/bookings/{refunded['id']}/return")
    assert 'data-outcome="refunded"' in page.text


def test_checkout_failure_releases_the_hold(pg, clinic):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    app = Server(app_settings(pg, stripe_secret_key=STRIPE_KEY, stripe_webhook_secret="whsec_x",
                              stripe_api_base=dead, stripe_max_network_retries=1)).start()
    try:
        with httpx.Client(base_url=app.url, timeout=60) as c:
            r, start = _book(c, clinic)
            assert r.status_code == 503 and 'data-error="payment_unavailable"' in r.text
            rows = owner_sql(pg.owner, clinic.id, "select status from dentbook.bookings")
            assert rows == [("released",)]
            assert _slot_state(c, clinic, start) == "free"
    finally:
        app.stop()


class StalledStripe:
    """A Stripe that accepts requests and answers none until told to hang up."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.hang_up = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.hang_up.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            conn.recv(65536)  # the request; no answer
            self.held.append(conn)

    def close(self) -> None:
        self.hang_up.set()
        for conn in self.held:
            conn.close()
        self.server.close()


def test_a_stalled_stripe_holds_no_database_connection(pg, clinic):
    """Bookings waiting on Stripe hold no connection (and no calendar lock): with a pool of
    two and four patients stuck at Checkout, pages are still served from the database."""
    stripe = StalledStripe()
    app = Server(app_settings(pg, stripe_secret_key=STRIPE_KEY, stripe_webhook_secret="whsec_x",
                              stripe_api_base=stripe.url, stripe_max_network_retries=0,
                              pool_min=1, pool_max=2, pool_timeout_seconds=3)).start()
    try:
        with httpx.Client(base_url=app.url, timeout=60) as c:
            free = free_starts(c, clinic.slug, clinic.doctors[0], clinic.visits["short"],
                               next_week(c, clinic.slug))
        starts: list[str] = []  # four times far enough apart that no two holds overlap
        for start in free:
            at = datetime.fromisoformat(start.replace("Z", "+00:00"))
            if all(abs((at - datetime.fromisoformat(s.replace("Z", "+00:00"))).total_seconds())
                   >= 7200 for s in starts):
                starts.append(start)
        starts = starts[:4]

        def booking(start: str) -> httpx.Response:
            with httpx.Client(base_url=app.url, timeout=60) as own:
                return _book(own, clinic, start=start, email=f"stall{starts.index(start)}@example.com")[0]

        with ThreadPoolExecutor(4) as pool:
            assert len(starts) == 4
            waiting = [pool.submit(booking, start) for start in starts]
            wait_for(lambda: len(stripe.held) == 4, what="four requests stuck at Stripe")
            with httpx.Client(base_url=app.url, timeout=60) as c:
                for _ in range(3):  # each needs a connection: none is held by the four
                    assert _slot_state(c, clinic, starts[0]) == "taken"  # a 503 has no grid
                    assert c.get("/readyz").status_code == 200  # a query through the pool
            idle = owner_sql(pg.owner, clinic.id, "select count(*) from pg_stat_activity where"
                             " datname = current_database() and usename = 'dentbook_app'"
                             " and state = 'idle in transaction'")
            assert idle == [(0,)]
            stripe.close()
            answers = [f.result() for f in waiting]
        # Each patient is told to try again (not "taken": their hold was given back).
        said = [(r.status_code, re.findall(r'data-error="(\w+)"', r.text)) for r in answers]
        assert said == [(503, ["payment_unavailable"])] * 4
        assert owner_sql(pg.owner, clinic.id, "select distinct status from dentbook.bookings"
                         " where patient_email like 'stall%%'") == [("released",)]
    finally:
        stripe.close()
        app.stop()


@pytest.mark.parametrize("token", [None, "", "forged-token-value"])
def test_booking_without_a_valid_csrf_token_is_refused(client, pg, clinic, token):
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    start = free_starts(client, clinic.slug, doctor, visit, next_week(client, clinic.slug))[0]
    data = form(doctor, visit, start, token or "")
    if token is None:
        del data["_csrf_token"]
    r = client.post(f"/{clinic.slug}/bookings", data=data)
    assert r.status_code == 403 and 'data-error="form_expired"' in r.text
    assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.bookings") == [(0,)]


def test_hold_limits_per_email_and_per_client(client, pg, clinic, server):
    starts = free_starts(client, clinic.slug, clinic.doctors[0], clinic.visits["short"],
                         next_week(client, clinic.slug))
    limit_email = server.settings.max_holds_per_email
    codes = [_book(client, clinic, email="same@example.com", start=s)[0].status_code
             for s in starts[:limit_email + 1]]
    assert codes == [303] * limit_email + [429]
    limit_ip = server.settings.max_holds_per_ip
    more = [_book(client, clinic, email=f"o{i}@example.com", start=s)[0]
            for i, s in enumerate(starts[limit_email + 1:limit_email + 1 + limit_ip])]
    assert [r.status_code for r in more][-1] == 429 and 'data-error="too_many_holds"' in more[-1].text
    active = owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.bookings where status = 'pending'")
    assert active == [(limit_ip,)]


def test_the_same_patient_asking_again_gets_the_same_hold_and_checkout(client, pg, clinic):
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    start = free_starts(client, clinic.slug, doctor, visit, next_week(client, clinic.slug))[0]
    data = form(doctor, visit, start, csrf_token(client, clinic.slug, doctor, visit, start),
                email="twice@example.com")
    first = client.post(f"/{clinic.slug}/bookings", data=data)
    again = client.post(f"/{clinic.slug}/bookings", data={**data, "email": "Twice@Example.com"})
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    rows = owner_sql(pg.owner, clinic.id, "select status from dentbook.bookings")
    assert rows == [("pending",)]
    other = client.post(f"/{clinic.slug}/bookings", data={**data, "email": "someone@example.com"})
    assert other.status_code == 409 and 'data-error="slot_taken"' in other.text
    tagged = client.post(f"/{clinic.slug}/bookings", data={**data, "email": "twice+again@example.com"})
    assert tagged.headers.get("location") == first.headers["location"]  # one mailbox
