"""What operators watch: `/metrics` of the real app parsed by prometheus_client's parser
(requests by route, streams, listener, pool, outbox backlog, holds and confirmations),
access as DENTBOOK_METRICS says, and the request id in the answer, in the process's JSON
log lines and in PostgreSQL's application_name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from uuid import uuid4

import httpx
import pytest
from scale_kit import Serve, app_names, metric, scrape

from helpers import (
    LocalStripe,
    Server,
    SseClient,
    app_settings,
    book,
    free_starts,
    new_clinic,
    next_week,
    owner_sql,
    session_of,
    stripe_signature,
    wait_for,
)

TOKEN = "scrape-token-0123456789"


@pytest.fixture
def watched(private_pg, recording_stripe: LocalStripe) -> Iterator[Server]:
    """The app with /metrics for loopback clients, behind a trusted proxy on loopback."""
    server = Server(app_settings(private_pg, metrics="local", trusted_proxies="127.0.0.1",
                                 **recording_stripe.app_settings())).start()
    yield server
    server.stop()


VISIT_TOKEN = "Zq3_" + "x7Kp" * 9 + "Ab1"  # the shape of a patient's link token (43)


def test_metrics_of_the_real_app_follow_a_booking(private_pg, watched, recording_stripe):
    pg = private_pg
    clinic = new_clinic(pg)
    before = scrape(watched.url)
    assert metric(before, "dentbook_listener_up") == 1
    assert metric(before, "dentbook_holds_total") == 0
    assert metric(before, "dentbook_pool_connections", state="idle") >= 1
    with httpx.Client(base_url=watched.url, timeout=60) as client:
        week = next_week(client, clinic.slug)
        start = free_starts(client, clinic.slug, clinic.doctors[0], clinic.visits["short"], week)[0]
        sse = SseClient(f"{watched.url}/{clinic.slug}/events?doctor={clinic.doctors[0]}"
                        f"&visit={clinic.visits['short']}&week={week}")
        try:
            sse.wait_state(start, "free")
            assert metric(scrape(watched.url), "dentbook_sse_streams") == 1
            r, _ = book(client, clinic, start=start)
            assert r.status_code == 303
            sse.wait_state(start, "taken")
        finally:
            sse.close()
    session = session_of(r.headers["location"])
    assert recording_stripe.pay(session).status_code == 200
    (event,) = [e["event"] for e in recording_stripe.events(session)
                if e["event"]["data"]["object"]["id"] == session]
    body = json.dumps(event).encode()
    for _ in range(3):  # replays are not confirmations
        assert httpx.post(f"{watched.url}/webhooks/stripe", content=body,
                          headers=stripe_signature(body)).status_code == 200
    # An e-mail due five minutes ago, claimed by a runner that died: the outbox backlog.
    owner_sql(pg.owner, clinic.id, "insert into dentbook.jobs (tenant_id, kind, due_at, claim, locked_until)"
              " values (%s, 'email', now() - interval '5 minutes', gen_random_uuid(),"
              " now() + interval '1 hour')", (clinic.id,))
    # A closed stream is noticed at the latest at its next keep-alive (15 s), on a busy machine later.
    wait_for(lambda: metric(scrape(watched.url), "dentbook_sse_streams") == 0, timeout=45,
             what="the stream closed")
    after = scrape(watched.url)

    assert metric(after, "dentbook_holds_total") == 1
    assert metric(after, "dentbook_confirmations_total") == 1
    assert metric(after, "dentbook_http_requests_total", route="/{slug}/bookings", method="POST",
                  status="303") == 1
    assert metric(after, "dentbook_http_requests_total", route="/webhooks/stripe", method="POST",
                  status="200") == 3
    assert metric(after, "dentbook_http_request_duration_seconds_count", route="/{slug}/events",
                  method="GET") == 1
    assert metric(after, "dentbook_listener_notifications_total") >= 2  # the hold, the payment
    assert metric(after, "dentbook_outbox_depth") == 1
    assert 299 <= metric(after, "dentbook_outbox_oldest_age_seconds") < 3600
    assert {"in_use", "idle", "waiting"} <= {dict(labels).get("state") for name, labels in after
                                             if name == "dentbook_pool_connections"}


def test_the_week_grid_cache_is_counted(private_pg, watched):
    clinic = new_clinic(private_pg)
    with httpx.Client(base_url=watched.url, timeout=60) as client:
        week = next_week(client, clinic.slug)
        grid = (f"/{clinic.slug}/slots?doctor={clinic.doctors[0]}&visit={clinic.visits['short']}"
                f"&week={week}")
        before = scrape(watched.url)
        assert client.get(grid).status_code == 200  # read and rendered
        assert client.get(grid).status_code == 200  # from the cache
        after = scrape(watched.url)
        start = free_starts(client, clinic.slug, clinic.doctors[0], clinic.visits["short"], week)[0]
        r, _ = book(client, clinic, start=start)
        assert r.status_code == 303
        # The hold's notification makes the doctor's grids stale: read and rendered again.
        wait_for(lambda: start not in free_starts(client, clinic.slug, clinic.doctors[0],
                                                  clinic.visits["short"], week),
                 what="the grid shows the hold")
        last = scrape(watched.url)

    def lookups(page: dict[tuple[str, frozenset[tuple[str, str]]], float], result: str) -> float:
        return metric(page, "dentbook_grid_cache_lookups_total", result=result)

    assert lookups(after, "miss") - lookups(before, "miss") == 1
    assert lookups(after, "hit") - lookups(before, "hit") == 1
    assert metric(after, "dentbook_grid_cache_entries") >= 1
    assert lookups(last, "miss") > lookups(after, "miss")


def test_metrics_access_follows_the_setting(client, watched, private_pg):
    assert client.get("/metrics").status_code == 404  # the suite's server: metrics off
    assert httpx.get(f"{watched.url}/metrics").status_code == 200  # local, from loopback
    # Through the trusted proxy for a client elsewhere: not local.
    forwarded = httpx.get(f"{watched.url}/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert forwarded.status_code == 404
    tokened = Server(app_settings(private_pg, metrics=f"token:{TOKEN}")).start()
    try:
        url = f"{tokened.url}/metrics"
        assert httpx.get(url).status_code == 404
        assert httpx.get(url, headers={"Authorization": "Bearer not-the-token-at-all"}).status_code == 404
        ok = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and "dentbook_listener_up 1.0" in ok.text
    finally:
        tokened.stop()


def test_the_request_id_is_the_trusted_proxys_or_our_own(client, watched):
    made = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", made)
    assert client.get("/healthz").headers["x-request-id"] != made
    # The suite's server trusts no proxy: a client cannot choose the id.
    assert client.get("/healthz", headers={"X-Request-ID": "mine"}).headers["x-request-id"] != "mine"
    given = f"lb-{uuid4().hex}"
    assert httpx.get(f"{watched.url}/healthz",
                     headers={"X-Request-ID": given}).headers["x-request-id"] == given
    for odd in ("two words", "x" * 49, "ąę".encode(), "-leading-dash"):
        answer = httpx.get(f"{watched.url}/no/such/page", headers={"X-Request-ID": odd})
        assert answer.status_code == 404 and answer.headers["x-request-id"] not in (odd, "ąę")


def test_the_request_id_names_the_transaction(pg):
    assert app_names(pg, pg.app) == [("dentbook req-19abc", "dentbook req-19abc"),
                                     ("dentbook", "dentbook")]


def test_process_logs_are_json_lines_carrying_the_request_id(private_pg, recording_stripe, tmp_path):
    serve = Serve(private_pg, None, recording_stripe.url, tmp_path, trusted_proxies="127.0.0.1").start()
    given = f"edge-{uuid4().hex[:12]}"
    try:
        assert httpx.get(f"{serve.url}/healthz", headers={"X-Request-ID": given}).status_code == 200
        body = json.dumps({"id": f"evt_{uuid4().hex}", "object": "event", "created": 1,
                           "type": "checkout.session.completed", "livemode": False,
                           "data": {"object": {"id": "cs_test_x", "object": "checkout.session",
                                               "metadata": {}}}}).encode()
        r = httpx.post(f"{serve.url}/webhooks/stripe", content=body,
                       headers={**stripe_signature(body), "X-Request-ID": given})
        assert r.status_code == 200 and r.json() == {"outcome": "ignored"}
        # A patient search and a visit link: neither the address nor the token is logged.
        httpx.get(f"{serve.url}/klinika-alfa/staff/patients",
                  params={"q": "secret.patient@example.com"}, headers={"X-Request-ID": given})
        httpx.get(f"{serve.url}/klinika-alfa/visits/{VISIT_TOKEN}", headers={"X-Request-ID": given})

        def logged() -> list[dict]:
            return [json.loads(line) for line in serve.log().splitlines()
                    if line.startswith("{") and given in line]
        wait_for(lambda: any(e["logger"] == "dentbook.payments" for e in logged()),
                 what="the webhook's log line")
    finally:
        serve.stop()
    lines = [line for line in serve.log().splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), [x for x in lines if not x.startswith("{")][:3]
    entries = logged()
    assert {e["request_id"] for e in entries} == {given}
    assert {"uvicorn.access", "dentbook.payments"} <= {e["logger"] for e in entries}
    assert "secret.patient" not in serve.log() and VISIT_TOKEN not in serve.log()
    access = [e["msg"] for e in entries if e["logger"] == "uvicorn.access"]
    assert any("/klinika-alfa/staff/patients?q=…" in m for m in access), access
    assert any("/klinika-alfa/visits/…" in m for m in access), access
