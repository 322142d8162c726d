"""`/metrics` over real HTTP: route-template labels, statuses, histograms, streams, callbacks, access."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Stream
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import ConnectionPool

from dentbook import metrics as m
from helpers import Threaded

TOKEN = "s3cret-scrape-token-0123"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def build_app(metrics: m.Metrics, setting: str) -> Litestar:
    @get("/ping")
    async def ping() -> str:
        return "pong"

    @get("/{slug:str}/slots")
    async def slots(slug: FromPath[str]) -> dict[str, str]:
        if slug == "missing":
            raise NotFoundException("no such clinic")
        return {"clinic": slug}

    @get("/boom")
    async def boom() -> str:
        raise RuntimeError("handler failed")

    @get("/stream")
    async def stream() -> Stream:
        async def events() -> AsyncIterator[str]:
            yield "retry: 1000\ndata: hello\n\n"
            while True:  # until the client goes away, as a calendar stream does
                await asyncio.sleep(0.05)
                yield ": keep-alive\n\n"
        return Stream(events(), media_type="text/event-stream")

    @get(m.PATH)
    async def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
        host = request.client.host if request.client else ""
        if not m.allowed(host, request.headers.get("authorization"), setting):
            raise NotFoundException()
        body, content_type = m.render(metrics)
        # As a header: Litestar would append a second charset to a text/ media type.
        return Response(body, headers={"content-type": content_type})

    return Litestar([ping, slots, boom, stream, scrape])


def _served(app: Any) -> Threaded:
    return Threaded(app, lifespan="on", timeout_graceful_shutdown=1).start()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics(clock: FakeClock) -> m.Metrics:
    return m.Metrics(clock=clock)


@pytest.fixture
def server(metrics: m.Metrics) -> Iterator[Threaded]:
    app = build_app(metrics, f"token:{TOKEN}")
    m.instrument(app, metrics)
    served = _served(app)
    yield served
    served.stop()


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_for(samples: Samples, route: str) -> dict[tuple[str, str], float]:
    found = {}
    for (name, labels), v in samples.items():
        d = dict(labels)
        if name == "dentbook_http_requests_total" and d["route"] == route:
            found[(d["method"], d["status"])] = v
    return found


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_requests_are_counted_by_route_template_method_and_status(server: Threaded) -> None:
    with httpx.Client(base_url=server.url) as client:
        for _ in range(3):
            assert client.get("/ping").status_code == 200
        assert client.head("/ping").status_code == 405
        assert client.get("/alfa/slots").status_code == 200
        assert client.get("/beta/slots").status_code == 200
        assert client.get("/missing/slots").status_code == 404
        assert client.get("/boom").status_code == 500
        assert client.get("/no/such/page").status_code == 404
        assert client.get("/wp-login.php").status_code == 404
        assert client.post("/ping").status_code == 405
        assert client.request("BREW", "/ping").status_code == 405
    samples = scrape(server.url)

    assert requests_for(samples, "/ping") == {("GET", "200"): 3}
    assert requests_for(samples, "/{slug}/slots") == {("GET", "200"): 2, ("GET", "404"): 1}
    assert requests_for(samples, "/boom") == {("GET", "500"): 1}
    # A method the route lacks never reaches it: Litestar's router refuses it, like an unknown path.
    assert requests_for(samples, m.UNMATCHED) == {("GET", "404"): 2, ("HEAD", "405"): 1,
                                                  ("POST", "405"): 1, ("other", "405"): 1}
    routes = {dict(labels).get("route") for name, labels in samples
              if name.startswith("dentbook_http_request")}
    assert routes == {"/ping", "/{slug}/slots", "/boom", m.UNMATCHED}
    # The scrape itself is not counted.
    assert not requests_for(samples, "/metrics")

    count = "dentbook_http_request_duration_seconds_count"
    assert value(samples, count, route="/ping", method="GET") == 3
    assert value(samples, count, route="/{slug}/slots", method="GET") == 3
    assert value(samples, count, route=m.UNMATCHED, method="GET") == 2
    buckets = {dict(labels)["le"]: v for (name, labels), v in samples.items()
               if name == "dentbook_http_request_duration_seconds_bucket"
               and dict(labels)["route"] == "/ping" and dict(labels)["method"] == "GET"}
    assert buckets["+Inf"] == 3
    assert set(buckets) == {str(b) for b in m.DURATION_BUCKETS} | {"+Inf"}
    assert list(buckets.values()) == sorted(buckets.values())
    assert value(samples, "dentbook_http_request_duration_seconds_sum", route="/ping", method="GET") > 0


def test_an_event_stream_is_counted_once_when_it_starts(server: Threaded) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        with client.stream("GET", "/stream") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            assert next(lines) == "retry: 1000"
            assert next(lines) == "data: hello"
            open_now = scrape(server.url)
            assert requests_for(open_now, "/stream") == {("GET", "200"): 1}
            assert value(open_now, "dentbook_http_request_duration_seconds_count",
                         route="/stream", method="GET") == 1
    after = scrape(server.url)
    # Ending the stream does not count it again.
    assert requests_for(after, "/stream") == {("GET", "200"): 1}
    assert value(after, "dentbook_http_request_duration_seconds_count", route="/stream", method="GET") == 1


def test_business_counters_and_callback_gauges_are_read_at_scrape_time(
        server: Threaded, metrics: m.Metrics, clock: FakeClock) -> None:
    listener = {"up": False}
    metrics.listener_ready = lambda: listener["up"]
    before = scrape(server.url)
    assert value(before, "dentbook_listener_up") == 0
    assert value(before, "dentbook_holds_total") == 0
    assert not [k for k in before if k[0] == "dentbook_pool_connections"]

    metrics.holds.inc()
    metrics.holds.inc()
    metrics.confirmations.inc()
    metrics.refunds.inc()
    listener["up"] = True
    clock.now += 40
    after_quiet = scrape(server.url)
    assert value(after_quiet, "dentbook_holds_total") == 2
    assert value(after_quiet, "dentbook_confirmations_total") == 1
    assert value(after_quiet, "dentbook_refunds_total") == 1
    assert value(after_quiet, "dentbook_listener_up") == 1
    assert value(after_quiet, "dentbook_listener_lag_seconds") == 40

    metrics.notification_handled()
    metrics.notification_handled()
    clock.now += 2.5
    after_notes = scrape(server.url)
    assert value(after_notes, "dentbook_listener_notifications_total") == 2
    assert value(after_notes, "dentbook_listener_lag_seconds") == 2.5


def test_outbox_age_keeps_growing_until_the_next_report(
        server: Threaded, metrics: m.Metrics, clock: FakeClock) -> None:
    assert value(scrape(server.url), "dentbook_outbox_depth") == 0
    metrics.set_outbox(7, 12.0)
    first = scrape(server.url)
    assert value(first, "dentbook_outbox_depth") == 7
    assert value(first, "dentbook_outbox_oldest_age_seconds") == 12
    clock.now += 30  # the worker has not reported since
    assert value(scrape(server.url), "dentbook_outbox_oldest_age_seconds") == 42
    metrics.set_outbox(0, None)
    drained = scrape(server.url)
    assert value(drained, "dentbook_outbox_depth") == 0
    assert value(drained, "dentbook_outbox_oldest_age_seconds") == 0


def test_pool_gauges_come_from_a_real_psycopg_pool(pg, server: Threaded, metrics: m.Metrics) -> None:
    pool = ConnectionPool(pg.app, min_size=2, max_size=2, open=False)
    pool.open(wait=True)
    try:
        metrics.pool_stats = pool.get_stats
        idle = scrape(server.url)
        assert value(idle, "dentbook_pool_connections", state="in_use") == 0
        assert value(idle, "dentbook_pool_connections", state="idle") == 2
        assert value(idle, "dentbook_pool_connections", state="waiting") == 0
        with pool.connection() as conn:
            conn.execute("select 1")
            busy = scrape(server.url)
        assert value(busy, "dentbook_pool_connections", state="in_use") == 1
        assert value(busy, "dentbook_pool_connections", state="idle") == 1
    finally:
        pool.close()


def test_two_apps_in_one_process_count_separately(server: Threaded, metrics: m.Metrics) -> None:
    other = m.Metrics()
    other_app = build_app(other, f"token:{TOKEN}")
    m.instrument(other_app, other)
    served = _served(other_app)
    try:
        httpx.get(f"{server.url}/ping")
        assert requests_for(scrape(served.url), "/ping") == {}
        assert requests_for(scrape(server.url), "/ping") == {("GET", "200"): 1}
    finally:
        served.stop()


def test_wrapping_the_whole_app_counts_the_same_way(metrics: m.Metrics) -> None:
    served = _served(m.MetricsMiddleware(build_app(metrics, f"token:{TOKEN}"), metrics))
    try:
        httpx.get(f"{served.url}/gamma/slots")
        httpx.get(f"{served.url}/nowhere")
        samples = scrape(served.url)
    finally:
        served.stop()
    assert requests_for(samples, "/{slug}/slots") == {("GET", "200"): 1}
    assert requests_for(samples, m.UNMATCHED) == {("GET", "404"): 1}


def test_scrape_access_over_http(server: Threaded) -> None:
    url = f"{server.url}/metrics"
    assert httpx.get(url).status_code == 404
    assert httpx.get(url, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 404
    assert httpx.get(url, headers={"Authorization": TOKEN}).status_code == 404
    ok = httpx.get(url, headers={"Authorization": f"bearer {TOKEN}"})
    assert ok.status_code == 200 and "dentbook_http_requests" in ok.text


@pytest.mark.parametrize(("host", "header", "setting", "expected"), [
    ("127.0.0.1", None, "off", False),
    ("127.0.0.1", f"Bearer {TOKEN}", "off", False),
    ("127.0.0.1", None, "local", True),
    ("127.8.0.3", None, "local", True),
    ("::1", None, "local", True),
    ("::ffff:127.0.0.1", None, "local", True),
    ("10.0.0.5", None, "local", False),
    ("::ffff:10.0.0.5", None, "local", False),
    ("203.0.113.9", f"Bearer {TOKEN}", "local", False),
    ("localhost", None, "local", False),
    ("", None, "local", False),
    ("203.0.113.9", f"Bearer {TOKEN}", f"token:{TOKEN}", True),
    ("203.0.113.9", f"  Bearer   {TOKEN} ", f"token:{TOKEN}", True),
    ("203.0.113.9", None, f"token:{TOKEN}", False),
    ("127.0.0.1", None, f"token:{TOKEN}", False),
    ("203.0.113.9", f"Bearer {TOKEN}x", f"token:{TOKEN}", False),
    ("203.0.113.9", f"Basic {TOKEN}", f"token:{TOKEN}", False),
    ("203.0.113.9", "Bearer ", "token:", False),
    ("203.0.113.9", "Bearer short", "token:short", False),
    ("203.0.113.9", "Bearer żółć-żółć-żółć-żółć", f"token:{TOKEN}", False),
    ("127.0.0.1", None, "on", False),
])
def test_access_rule(host: str, header: str | None, setting: str, expected: bool) -> None:
    assert m.allowed(host, header, setting) is expected


@pytest.mark.parametrize(("setting", "problem"), [
    ("off", None), ("local", None), (f"token:{TOKEN}", None),
    ("token:short", "at least 16"), ("on", "off, local or token"), ("", "off, local or token"),
])
def test_setting_validation(setting: str, problem: str | None) -> None:
    found = m.setting_problem(setting)
    assert found is None if problem is None else (found is not None and problem in found)
