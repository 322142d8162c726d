"""G5 over real HTTP SSE: calendars change the instant time is taken or freed, across
processes, after reconnects and listener loss, without patient data on the wire."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from helpers import (
    SseClient,
    book,
    booking_row,
    free_port,
    free_starts,
    next_week,
    owner_sql,
    release,
    session_of,
    wait_for,
)


def _events_url(base, clinic, week, visit="short"):
    return (f"{base}/{clinic.slug}/events?doctor={clinic.doctors[0]}"
            f"&visit={clinic.visits[visit]}&week={week}")


def _hold(client, clinic, start, email="live@example.com", name="Ann Secret"):
    r, _ = book(client, clinic, start=start, email=email, name=name)
    assert r.status_code == 303, r.text[-300:]
    return session_of(r.headers["location"])


@pytest.fixture
def watched(client, server, clinic):
    week = next_week(client, clinic.slug)
    start = free_starts(client, clinic.slug, clinic.doctors[0], clinic.visits["short"], week)[3]
    sse = SseClient(_events_url(server.url, clinic, week))
    wait_for(lambda: sse.state(start) == "free", what="initial state")
    yield week, start, sse
    sse.close()


def test_taken_then_free_after_cancel(client, pg, clinic, watched):
    _, start, sse = watched
    session = _hold(client, clinic, start)
    sse.wait_state(start, "taken")
    row = booking_row(pg.owner, clinic.id, session)
    release(client, clinic.slug, row["id"])
    sse.wait_state(start, "free")


def test_free_after_the_session_expires(client, clinic, watched, stripe_local):
    _, start, sse = watched
    session = _hold(client, clinic, start)
    sse.wait_state(start, "taken")
    stripe_local.http.post(f"/_test/sessions/{session}/expire_now")
    sse.wait_state(start, "free")


def test_free_when_a_hold_lapses_untouched(client, pg, clinic, watched):
    _, start, sse = watched
    session = _hold(client, clinic, start)
    sse.wait_state(start, "taken")
    row = booking_row(pg.owner, clinic.id, session)
    # shorten the hold to 2 s; after that nobody touches the database
    owner_sql(pg.owner, clinic.id, "update dentbook.bookings set hold_expires_at = now() + interval"
              " '2 seconds' where id = %s", (row["id"],))
    sse.wait_state(start, "free", timeout=10)
    assert booking_row(pg.owner, clinic.id, session)["status"] == "pending"  # no writer ran


def test_free_after_late_payment_refund_and_taken_by_the_new_holder(client, pg, clinic, watched,
                                                                     stripe_local):
    _, start, sse = watched
    old = _hold(client, clinic, start)
    owner_sql(pg.owner, clinic.id, "update dentbook.bookings set hold_expires_at = now() - interval"
              " '1 second' where stripe_session_id = %s", (old,))
    sse.wait_state(start, "free")
    _hold(client, clinic, start, email="second@example.com")
    sse.wait_state(start, "taken")
    stripe_local.pay(old, force=True)
    wait_for(lambda: booking_row(pg.owner, clinic.id, old)["status"] == "refunded", what="refund")
    time.sleep(0.5)
    assert sse.state(start) == "taken"  # the refund of the old payment frees nothing of the new


def test_reconnect_with_last_event_id_catches_up(client, server, clinic, watched):
    week, start, sse = watched
    last = sse.last_id()
    assert last
    sse.close()
    _hold(client, clinic, start)  # happens while nobody is watching
    again = SseClient(_events_url(server.url, clinic, week), headers={"Last-Event-ID": last})
    try:
        again.wait_state(start, "taken")
    finally:
        again.close()


def test_listener_loss_reconnects_and_resyncs(client, pg, clinic, watched):
    _, start, sse = watched
    seen = len(sse.messages)
    with psycopg.connect(pg.owner, autocommit=True) as conn:
        killed = conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where query ilike 'listen %%'"
            " and datname = current_database()").fetchall()
    assert killed, "no listener connection found"
    # the resync after reconnecting repeats every cell of the week
    wait_for(lambda: any(d.count("data-slot") > 5 for _, d in sse.messages[seen:]), what="resync")
    _hold(client, clinic, start)
    sse.wait_state(start, "taken")


def test_notify_payload_and_sse_bytes_carry_no_patient_data(client, pg, clinic, watched):
    _, start, sse = watched
    with psycopg.connect(pg.owner, autocommit=True) as listener:
        listener.execute("listen dentbook_bookings")
        _hold(client, clinic, start, email="private.person@example.com", name="Zofia Prywatna")
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert notes
    payload = json.loads(notes[0].payload)
    assert set(payload) == {"t", "d", "b", "s", "e", "st", "x"}
    sse.wait_state(start, "taken")
    wire = "".join(d for _, d in sse.messages)
    for secret in ("private.person", "Zofia", "Prywatna", "example.com"):
        assert secret not in notes[0].payload and secret not in wire


def test_a_second_process_sees_bookings_made_through_the_first(client, pg, clinic, server):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": pg.app, "DENTBOOK_SECRET_KEY": "x",
           "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory",
                             "dentbook.app:create_app_from_env", "--port", str(port),
                             "--timeout-graceful-shutdown", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _up(port), what="second process")
        week = next_week(client, clinic.slug)
        start = free_starts(client, clinic.slug, clinic.doctors[0], clinic.visits["short"], week)[5]
        other = SseClient(_events_url(f"http://127.0.0.1:{port}", clinic, week))
        try:
            wait_for(lambda: other.state(start) == "free", what="initial state in process B")
            _hold(client, clinic, start)  # through process A
            other.wait_state(start, "taken")
        finally:
            other.close()
    finally:
        proc.terminate()
        proc.wait(10)


def _up(port):
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_unknown_clinic_or_foreign_doctor_is_404(client, make_clinic):
    a, b = make_clinic(), make_clinic()
    assert client.get(f"/{a.slug}/events", params={"doctor": str(b.doctors[0])}).status_code == 404
    assert client.get("/nope/events", params={"doctor": str(a.doctors[0])}).status_code == 404
    assert client.get(f"/{a.slug}/events").status_code == 404


def test_a_slow_client_is_dropped_without_hurting_a_fast_one(client, pg, server, clinic, watched):
    week, start, fast = watched
    live = server.app.state["live"]
    live.fanout.queue_size, live.send_timeout_seconds = 8, 1.0
    loop = live.listener._task.get_loop()
    try:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        slow.connect(("127.0.0.1", server.settings.port))
        slow.sendall(f"GET {_events_url('', clinic, week)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        topic = next(t for t in live.fanout.topics if getattr(t, "slug", None) == clinic.slug)

        def watchers() -> int:
            return len(live.fanout.topics.get(topic, ()))

        wait_for(lambda: watchers() == 2, what="slow client subscribed")
        # ~4 MB of traffic for the topic, more than the kernel buffers for a reader that
        # never reads (SSE comments, which clients ignore)
        padding = b": " + b"x" * 32_000 + b"\n\n"
        for _ in range(130):
            loop.call_soon_threadsafe(live.fanout.publish, topic, padding)
            time.sleep(0.01)
        wait_for(lambda: watchers() == 1, timeout=30, what="slow client dropped")
        session = _hold(client, clinic, start)
        fast.wait_state(start, "taken")  # the fast one is still served, live
        row = booking_row(pg.owner, clinic.id, session)
        release(client, clinic.slug, row["id"])
        fast.wait_state(start, "free")
        slow.close()
    finally:
        live.fanout.queue_size, live.send_timeout_seconds = 64, 10.0


def test_malformed_notifications_are_skipped_and_the_calendar_stays_live(client, pg, clinic,
                                                                          watched, server):
    _, start, sse = watched
    with psycopg.connect(pg.owner, autocommit=True) as conn:
        for payload in ("not json", "{}", '{"t": "x"}', json.dumps({
                "t": str(clinic.id), "d": str(clinic.doctors[0]), "b": "nope", "s": 1, "e": 2,
                "st": "pending"}), "[1, 2]"):
            conn.execute("select pg_notify('dentbook_bookings', %s)", (payload,))
    _hold(client, clinic, start)
    sse.wait_state(start, "taken")
    assert client.get("/readyz").status_code == 200


def test_a_listener_that_dies_is_restarted_and_readiness_says_so_meanwhile(client, pg, clinic,
                                                                            watched, server):
    _, start, sse = watched
    live = server.app.state["live"]
    real = live.schedule_lapse
    failures = []

    def broken(change):
        live.schedule_lapse = real  # once
        failures.append(change)
        raise RuntimeError("a bug in the listener loop")

    live.schedule_lapse, live.listener.restart_delay = broken, 3.0
    try:
        _hold(client, clinic, start)  # its notification kills the listener task
        wait_for(lambda: failures and not live.listener.ready, what="the listener to fail")
        assert client.get("/readyz").status_code == 503
        wait_for(lambda: client.get("/readyz").status_code == 200, what="listener restarted")
    finally:
        live.listener.restart_delay = 0.5
    # the restart resynchronises: the held slot shows taken although its message was lost
    sse.wait_state(start, "taken")


def test_only_dentbook_roles_may_connect_to_the_database(pg):
    stranger = f"stranger_{os.getpid()}"
    with psycopg.connect(pg.server, autocommit=True) as conn:
        conn.execute(f"drop role if exists {stranger}")
        conn.execute(f"create role {stranger} login")
    try:
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(psycopg.conninfo.make_conninfo(pg.owner, user=stranger)).close()
        psycopg.connect(pg.app).close()  # the runtime role still may
    finally:
        with psycopg.connect(pg.server, autocommit=True) as conn:
            conn.execute(f"drop role if exists {stranger}")
