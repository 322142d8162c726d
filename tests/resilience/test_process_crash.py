"""A server process killed (SIGKILL) mid-booking: no half-written booking, and the
orphaned holds free their time when they lapse.

The kill lands at the worst moment on purpose: the app's Stripe address is a socket
that accepts and never answers, so every booking in flight has committed its hold and
waits for Checkout when the process dies.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import httpx

from helpers import (
    AppProcess,
    csrf_token,
    form,
    free_starts,
    next_week,
    owner_sql,
    stripe_and_app,
    wait_for,
)

IN_FLIGHT = 5


def test_sigkill_mid_booking_leaves_only_lapsing_holds(pg, make_clinic) -> None:
    clinic = make_clinic()
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    silent = socket.socket()  # a Stripe that accepts connections and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    app = AppProcess(pg.app, f"http://127.0.0.1:{silent.getsockname()[1]}").start()
    try:
        with httpx.Client(base_url=app.url, timeout=30) as client:
            starts = free_starts(client, clinic.slug, doctor, visit, next_week(client, clinic.slug))
            token = csrf_token(client, clinic.slug, doctor, visit, starts[0])
            cookies = dict(client.cookies)

        def book(start: str) -> str:
            with httpx.Client(base_url=app.url, timeout=60, cookies=cookies) as c:
                try:
                    c.post(f"/{clinic.slug}/bookings",
                           data=form(doctor, visit, start, token, email=f"{start}@example.com"))
                except httpx.HTTPError as exc:
                    return type(exc).__name__
            return "answered"

        pending = "select count(*) from dentbook.bookings where doctor_id = %s"
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            outcomes = pool.map(book, starts[:IN_FLIGHT])
            wait_for(lambda: owner_sql(pg.owner, clinic.id, pending, (doctor,))[0][0] == IN_FLIGHT,
                     what="every hold committed, Checkout awaited")
            app.kill()
            assert set(outcomes) <= {"RemoteProtocolError", "ReadError", "ConnectError"}
    finally:
        app.stop()
        silent.close()

    rows = owner_sql(pg.owner, clinic.id, """
        select b.status, b.stripe_session_id, b.hold_expires_at > now(), b.hold_expires_at <= now()
               + interval '31 minutes', (select count(*) from dentbook.audit_log e
                                         where e.booking_id = b.id)
        from dentbook.bookings b where b.doctor_id = %s""", (doctor,))
    # Each is whole: a pending hold with its expiry and its audit row, no session, nothing else.
    assert len(rows) == IN_FLIGHT
    assert all(r == ("pending", None, True, True, 1) for r in rows), rows

    # Time passes (the shortest hold is 30 minutes: the expiry is moved, not waited for).
    owner_sql(pg.owner, clinic.id, "update dentbook.bookings set hold_expires_at = now()"
              " - interval '1 second' where doctor_id = %s", (doctor,))
    stripe, fresh = stripe_and_app(pg)
    try:
        with httpx.Client(base_url=fresh.url, timeout=30) as client:
            week = next_week(client, clinic.slug)
            offered = free_starts(client, clinic.slug, doctor, visit, week)
            assert set(starts[:IN_FLIGHT]) <= set(offered), "a lapsed orphan hold still blocks its slot"
            token = csrf_token(client, clinic.slug, doctor, visit, starts[0])
            r = client.post(f"/{clinic.slug}/bookings",
                            data=form(doctor, visit, starts[0], token, email="next@example.com"))
            assert r.status_code == 303, r.text[:300]
    finally:
        fresh.stop()
        stripe.stop()
    statuses = sorted(r[0] for r in owner_sql(
        pg.owner, clinic.id, "select status from dentbook.bookings where doctor_id = %s", (doctor,)))
    assert statuses == ["expired"] + ["pending"] * IN_FLIGHT  # the orphan gave way, the new hold holds
    print(f"crash: 1 process killed with {IN_FLIGHT} bookings in flight; {len(rows)} rows checked "
          f"whole; the orphaned slot booked again by another patient")
