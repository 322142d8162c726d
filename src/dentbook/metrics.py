"""Prometheus metrics: what operators graph and alert on, served at `/metrics`.

Each `Metrics` owns its registry (never the process-global one), so several apps in one
process (the tests) keep separate counts. Requests are counted by an ASGI wrapper placed
around the whole Litestar app: Litestar runs its own middleware only for matched routes, and
unmatched paths are what a scanner sends. Requests are labelled by the matched route's path
template (`/{slug}/slots`), never the raw path, and by a known method, so label values stay few.
Callback values (pool, listener state, outbox age) are read when Prometheus scrapes.

Access is set by `DENTBOOK_METRICS`:

* `off` (the default): `/metrics` answers 404;
* `local`: only clients on a loopback address (a Prometheus on the same host). Pass the
  client address after trusted-proxy resolution: behind a proxy on the same host every
  request arrives from loopback;
* `token:<secret>`: clients sending `Authorization: Bearer <secret>` (at least 16 characters),
  compared in constant time.

A refused scrape also answers 404, so the endpoint's existence is not advertised.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

PATH = "/metrics"
UNMATCHED = "unmatched"
# From a cached page (about 1 ms) to a request stuck behind a pool timeout (seconds).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Anything else a client invents is counted as "other", so it cannot add label values.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MIN_TOKEN_LENGTH = 16

PoolStats = Callable[[], Mapping[str, int]]
GridStats = Callable[[], tuple[int, int, int]]  # lookups answered from the cache, not; kept now


class _ScrapeCollector(Collector):
    """Values read from its `Metrics` callbacks each time Prometheus scrapes."""

    def __init__(self, owner: Metrics) -> None:
        self.owner = owner


class _PoolCollector(_ScrapeCollector):
    """`dentbook_pool_connections{state}` from psycopg_pool's `get_stats()`, read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("dentbook_pool_connections",
                                   "Database pool connections by state.", labels=["state"])
        source = self.owner.pool_stats
        if source is not None:
            stats = source()
            size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
            family.add_metric(["in_use"], size - available)
            family.add_metric(["idle"], available)
            family.add_metric(["waiting"], stats.get("requests_waiting", 0))
        yield family


class _GridCollector(_ScrapeCollector):
    """The week-grid cache of this process (dentbook.live.grids), read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        lookups = CounterMetricFamily("dentbook_grid_cache_lookups",
                                      "Week grids asked of the cache, by result.", labels=["result"])
        kept = GaugeMetricFamily("dentbook_grid_cache_entries", "Week grids in the cache now.")
        source = self.owner.grid_stats
        if source is not None:
            hits, misses, entries = source()
            lookups.add_metric(["hit"], hits)
            lookups.add_metric(["miss"], misses)
            kept.add_metric([], entries)
        yield lookups
        yield kept


class Metrics:
    """One app's metrics. Counters are public attributes; callbacks may be set after start-up."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry()
        self.clock = clock
        r = self.registry
        self.requests = Counter("dentbook_http_requests", "HTTP requests by route template and status.",
                                ["route", "method", "status"], registry=r)
        self.duration = Histogram(
            "dentbook_http_request_duration_seconds",
            "Time to the last byte of a response (to the first byte of an event stream).",
            ["route", "method"], buckets=DURATION_BUCKETS, registry=r)
        self.sse_streams = Gauge("dentbook_sse_streams", "Event streams open now.", registry=r)
        self.holds = Counter("dentbook_holds", "Slot holds made.", registry=r)
        self.confirmations = Counter("dentbook_confirmations", "Bookings confirmed by payment.",
                                     registry=r)
        self.refunds = Counter("dentbook_refunds", "Refunds made.", registry=r)
        # With `--workers N` a scrape reaches one of N processes: this says which.
        Info("dentbook_process", "The process that answered this scrape.", registry=r
             ).info({"pid": str(os.getpid())})
        self.notifications = Counter("dentbook_listener_notifications",
                                     "Notifications the listener handled.", registry=r)
        # Set by the integrator once the pool and the listener exist.
        self.pool_stats: PoolStats | None = None
        self.listener_ready: Callable[[], bool] | None = None
        self.grid_stats: GridStats | None = None
        self._last_notification = clock()
        self._outbox_depth = 0
        self._outbox_oldest: float | None = None

        Gauge("dentbook_listener_up", "1 while the LISTEN connection is up.", registry=r
              ).set_function(lambda: 1.0 if self.listener_ready is not None and self.listener_ready()
                             else 0.0)
        Gauge("dentbook_listener_lag_seconds",
              "Seconds since the listener last handled a notification (since start-up if none).",
              registry=r).set_function(lambda: self.clock() - self._last_notification)
        Gauge("dentbook_outbox_depth", "Outbox messages waiting to be sent.", registry=r
              ).set_function(lambda: self._outbox_depth)
        Gauge("dentbook_outbox_oldest_age_seconds", "Age of the oldest waiting outbox message.",
              registry=r).set_function(self._outbox_age)
        r.register(_PoolCollector(self))
        r.register(_GridCollector(self))

    def notification_handled(self) -> None:
        """Call after the listener has handled one notification."""
        self.notifications.inc()
        self._last_notification = self.clock()

    def set_outbox(self, depth: int, oldest_age: float | None) -> None:
        """Record the outbox as just read: its depth and the oldest message's age in seconds.

        The age keeps growing between calls, so a worker that stops reporting still shows up
        as an outbox growing old, not as a frozen value.
        """
        self._outbox_depth = depth
        self._outbox_oldest = None if oldest_age is None or depth == 0 else self.clock() - oldest_age

    def _outbox_age(self) -> float:
        return 0.0 if self._outbox_oldest is None else self.clock() - self._outbox_oldest

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route, method).observe(seconds)


def render(metrics: Metrics) -> tuple[bytes, str]:
    """The exposition body and its content type, for the `/metrics` handler."""
    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST


def _is_event_stream(message: HTTPResponseStartEvent) -> bool:
    for name, value in message["headers"]:
        if name.lower() == b"content-type":
            return bool(value.split(b";")[0].strip().lower() == b"text/event-stream")
    return False


class MetricsMiddleware:
    """ASGI wrapper timing and counting every HTTP request of the app it wraps.

    It wraps the Litestar app or its `asgi_handler` (see `instrument`), so it reads the route template that
    Litestar's router writes into the shared scope (`scope["path_template"]`) once routing is
    done; without one (no route matched, or a method the route lacks) the route is "unmatched".
    An event stream is counted when its response starts (web.streams counts open streams).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, *, exclude: frozenset[str] = frozenset({PATH})
                 ) -> None:
        self.app = app
        self.metrics = metrics
        self.exclude = exclude

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] in self.exclude:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        recorded = False

        def record() -> None:
            nonlocal recorded
            recorded = True
            route = scope.get("path_template") or UNMATCHED
            self.metrics.observe(route, scope["method"], status or 500, time.perf_counter() - started)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if _is_event_stream(message):
                    record()
            await send(message)
            if (message["type"] == "http.response.body" and not message.get("more_body", False)
                    and not recorded):
                record()

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not recorded:
                # The app failed or the client left before the last byte: still one request.
                record()


def instrument(app: Litestar, metrics: Metrics) -> None:
    """Count and time every HTTP request `app` answers, matched or not.

    Wraps `app.asgi_handler`, the app-wide handler Litestar calls after its own set-up, as
    Litestar's OpenTelemetry plugin does; `create_app` keeps returning the Litestar app.
    """
    app.asgi_handler = MetricsMiddleware(app.asgi_handler, metrics)


def setting_problem(value: str) -> str | None:
    """Why `value` is not a usable DENTBOOK_METRICS setting, or None if it is."""
    if value in ("off", "local"):
        return None
    if value.startswith("token:"):
        if len(value) - len("token:") < MIN_TOKEN_LENGTH:
            return f"DENTBOOK_METRICS token must be at least {MIN_TOKEN_LENGTH} characters"
        return None
    return "DENTBOOK_METRICS must be off, local or token:<secret>"


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def allowed(client_host: str, header_token: str | None, settings_value: str) -> bool:
    """Whether this scrape may read `/metrics` (see the module docstring).

    `header_token` is the request's Authorization header as sent (`Bearer <secret>`).
    """
    if settings_value == "local":
        return _is_loopback(client_host)
    if settings_value.startswith("token:") and setting_problem(settings_value) is None:
        if header_token is None:
            return False
        scheme, _, token = header_token.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        expected = settings_value.removeprefix("token:").encode()
        return hmac.compare_digest(token.strip().encode(), expected)
    return False
