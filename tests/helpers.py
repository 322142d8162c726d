"""Test helpers: test databases and clinics, picking a free slot from the real page and
booking it over HTTP, the app and the local Stripe over real HTTP, an SSE client."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Self, TypeVar
from uuid import UUID

import httpx
import psycopg
import uvicorn
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dentbook import admin, demo
from dentbook.app import create_app
from dentbook.migrate import migrate
from dentbook.protocol import DentbookProtocol
from dentbook.settings import Settings, load_settings

T = TypeVar("T")
STRIPE_KEY = "sk_test_dentbook_tests"
WEBHOOK_SECRET = "whsec_dentbook_tests"
SLOT = re.compile(r'data-slot data-doctor="([^"]+)" data-start="([^"]+)" data-state="free"')
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def free_starts(client: httpx.Client, slug: str, doctor: UUID, visit: UUID,
                week: str | None = None) -> list[str]:
    params = {"doctor": str(doctor), "visit": str(visit)}
    if week:
        params["week"] = week
    page = client.get(f"/{slug}", params=params)
    assert page.status_code == 200, page.text[:500]
    return [start for _, start in SLOT.findall(page.text)]


def next_week(client: httpx.Client, slug: str) -> str:
    """The week after this one (YYYY-MM-DD): its slots are safely past the notice."""
    page = client.get(f"/{slug}")
    m = re.search(r'week=(\d{4}-\d{2}-\d{2})[^"]*"[^>]*rel="next"', page.text)
    assert m, "no next-week link"
    return m.group(1)


def csrf_token(client: httpx.Client, slug: str, doctor: UUID, visit: UUID, start: str) -> str:
    """Open the booking form as a browser would, and take its CSRF token."""
    page = client.get(f"/{slug}", params={"doctor": str(doctor), "visit": str(visit), "start": start})
    m = CSRF.search(page.text)
    assert m, "booking form has no CSRF token"
    return m.group(1)


def form(doctor: UUID, visit: UUID, start: str, token: str, email: str = "pat@example.com",
         name: str = "Pat Patient", phone: str = "") -> dict[str, str]:
    return {"doctor_id": str(doctor), "visit_type_id": str(visit), "start": start, "name": name,
            "email": email, "phone": phone, "_csrf_token": token}


def book(client: httpx.Client, clinic: Any, visit: str = "short", email: str = "pat@example.com",
         index: int = 0, start: str | None = None, name: str = "Pat Patient") -> tuple[httpx.Response, str]:
    """Open the booking form for a slot of next week (or `start`) and submit it."""
    doctor = clinic.doctors[0]
    if start is None:
        start = free_starts(client, clinic.slug, doctor, clinic.visits[visit],
                            next_week(client, clinic.slug))[index]
    token = csrf_token(client, clinic.slug, doctor, clinic.visits[visit], start)
    return client.post(f"/{clinic.slug}/bookings", data=form(
        doctor, clinic.visits[visit], start, token, email=email, name=name)), start


def book_and_pay(client: httpx.Client, pg: Any, clinic: Any, stripe: Any,
                 **booking: Any) -> tuple[dict, str]:
    """`book` (with these arguments), pay by card at the local Stripe and wait until its
    webhook has confirmed the visit: the booking's row, and the visit's start."""
    r, start = book(client, clinic, **booking)
    assert r.status_code == 303, r.text[-500:]
    session = session_of(r.headers["location"])
    assert stripe.pay(session).status_code == 200
    wait_for(lambda: booking_row(pg.owner, clinic.id, session)["status"] == "confirmed",
             what="payment confirmed")
    row = booking_row(pg.owner, clinic.id, session)
    assert row is not None
    return row, start


def hold_sessions(client: httpx.Client, clinic: Any, count: int, email: str) -> list[str]:
    """`book` the first `count` free slots of next week, patient i as `{email}{i}@example.com`:
    the Checkout Session id of each hold, in order."""
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    starts = free_starts(client, clinic.slug, doctor, visit, next_week(client, clinic.slug))
    sessions = []
    for i, start in enumerate(starts[:count]):
        r, _ = book(client, clinic, email=f"{email}{i}@example.com", start=start)
        assert r.status_code == 303, r.text[:300]
        sessions.append(session_of(r.headers["location"]))
    return sessions


def release(client: httpx.Client, slug: str, booking_id: object) -> httpx.Response:
    """Leave Checkout and press "give this time back", as the patient does."""
    page = client.get(f"/{slug}/bookings/{booking_id}/cancelled")
    token = CSRF.search(page.text)
    assert token, "the cancel page has no form"
    return client.post(f"/{slug}/bookings/{booking_id}/release",
                       data={"_csrf_token": token.group(1)})


def stripe_signature(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict[str, str]:
    """Headers signing `payload` as Stripe does: v1 = HMAC-SHA256(secret, "{t}.{body}")."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={mac}", "Content-Type": "application/json"}


def webhook_storm(events: list[dict], urls: list[str], copies: int, seed: int) -> list[httpx.Response]:
    """Each Stripe event signed and delivered `copies` times, spread evenly over the apps at
    `urls`, in an order shuffled by `seed`, sixteen at a time."""
    deliveries = [(url, json.dumps(e).encode()) for e in events for url in urls
                  for _ in range(copies // len(urls))]
    random.Random(seed).shuffle(deliveries)
    with ThreadPoolExecutor(16) as pool, httpx.Client(timeout=120) as http:
        return list(pool.map(lambda d: http.post(f"{d[0]}/webhooks/stripe", content=d[1],
                                                 headers=stripe_signature(d[1])), deliveries))


def session_of(location: str) -> str:
    """The Checkout Session id from the hosted page we were redirected to."""
    return location.rstrip("/").rsplit("/", 1)[-1]


def wait_for(check: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def booking_row(owner_url: str, tenant: UUID, session_id: str) -> dict | None:
    with psycopg.connect(owner_url) as conn:
        conn.execute("set role dentbook_owner")
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant),))
        cur = conn.execute("select * from dentbook.bookings where stripe_session_id = %s",
                           (session_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c.name for c in cur.description], row, strict=True))


def owner_sql(owner_url: str, tenant: UUID, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(owner_url) as conn:
        conn.execute("set role dentbook_owner")
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant),))
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def next_weekday(after_days: int = 2, weekday: int = 2) -> date:
    """A date at least `after_days` ahead that falls on ISO `weekday` (default Tuesday)."""
    d = datetime.now(UTC).date() + timedelta(days=after_days)
    while d.isoweekday() != weekday:
        d += timedelta(days=1)
    return d


@dataclass(frozen=True)
class Pg:
    """URLs of a test database: `owner` is privileged, `app` is the runtime role."""

    owner: str
    app: str
    server: str  # privileged URL of the maintenance database, for restarts and drops


def create_database(server: str) -> Pg:
    """A fresh database on `server`, migrated, with the demo clinics."""
    name = f"dentbook_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    owner = make_conninfo(server, dbname=name)
    migrate(owner)
    demo.load(owner)
    return Pg(owner=owner, app=make_conninfo(owner, user="dentbook_app"), server=server)


def drop_database(pg: Pg) -> None:
    name = conninfo_to_dict(pg.owner)["dbname"]
    with psycopg.connect(pg.server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@dataclass
class ClinicData:
    slug: str
    id: UUID
    doctors: list[UUID] = field(default_factory=list)
    visits: dict[str, UUID] = field(default_factory=dict)


def new_clinic(pg: Pg, doctors: int = 1, hours: str = "mon-fri 09:00-17:00",
               time_zone: str = "Europe/Warsaw") -> ClinicData:
    """A clinic with its own slug, `doctors` doctors on `hours`, a short and a long visit."""
    slug = f"t-{uuid.uuid4().hex[:10]}"
    c = ClinicData(slug, admin.add_clinic(pg.owner, slug, f"Test {slug}", time_zone))
    for i in range(doctors):
        c.doctors.append(admin.add_doctor(pg.owner, slug, f"dr Test {i}", hours))
    c.visits["short"] = admin.add_visit_type(pg.owner, slug, "Krótka", "Short", 30, 5000)
    c.visits["long"] = admin.add_visit_type(pg.owner, slug, "Długa", "Long", 90, 15000)
    return c


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a fresh thread: another suite (Playwright) may own this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Threaded:
    """An ASGI app served by uvicorn in a thread on a local port: real HTTP. Keyword arguments
    go to uvicorn's Config."""

    def __init__(self, app: Any, port: int | None = None, **config: Any) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_config=None, **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> Self:
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 20, "a test server")
        if not self.server.started:
            raise RuntimeError("test server did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Server(Threaded):
    """The app on a free port, with uvicorn configured as `dentbook serve` configures it."""

    def __init__(self, settings: Settings, protocol: type[DentbookProtocol] = DentbookProtocol) -> None:
        self.settings = settings
        self.app = create_app(settings)
        super().__init__(self.app, settings.port, lifespan="on", timeout_graceful_shutdown=1,
                         http=protocol, proxy_headers=False)


def app_settings(pg: Any, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "database_url": pg.app, "port": free_port(), "secret_key": "test-secret",
        "pool_max": 20,
    }
    base.update(overrides)
    return load_settings({}, **base)


def stripe_and_app(pg: Any, webhook_retry_delays: tuple[float, ...] = (0.2, 0.5, 1, 2),
                   **overrides: object) -> tuple[LocalStripe, Server]:
    """The local Stripe and the app, started on free ports and wired to each other: the app
    calls this Stripe, and Stripe's signed webhooks reach the app. Stop both when done."""
    app_port = free_port()
    stripe = LocalStripe(free_port(), f"http://127.0.0.1:{app_port}/webhooks/stripe",
                         webhook_retry_delays).start()
    try:
        app = Server(app_settings(pg, port=app_port, **{**stripe.app_settings(), **overrides})).start()
    except BaseException:
        stripe.stop()
        raise
    return stripe, app


def is_ready(url: str) -> bool:
    """Whether the app at `url` answers /readyz with 200 (its database reachable)."""
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class AppProcess:
    """The app in its own uvicorn process on a free port (so it can be killed), reading its
    settings from the environment as in production."""

    def __init__(self, database_url: str, stripe_api_base: str,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "DENTBOOK_SECRET_KEY": "test-secret",
                    "STRIPE_SECRET_KEY": STRIPE_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                    "STRIPE_API_BASE": stripe_api_base, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AppProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "dentbook.app:create_app_from_env",
             "--port", str(self.port), "--timeout-graceful-shutdown", "1", "--log-level", "warning"],
            env=self.env)
        wait_for(self.ready, what="app process")
        return self

    def ready(self) -> bool:
        return is_ready(self.url)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, connections cut mid-request."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)


class LocalStripe(Threaded):
    """The shipped local Stripe service, served over real HTTP in a thread."""

    def __init__(self, port: int, webhook_url: str | None,
                 webhook_retry_delays: tuple[float, ...] = (0.2, 0.5, 1, 2)) -> None:
        from dentbook.stripe_local.app import create_app as create_stripe
        from dentbook.stripe_local.config import LocalStripeConfig

        self.config = LocalStripeConfig(
            api_key=STRIPE_KEY, port=port, webhook_url=webhook_url, webhook_secret=WEBHOOK_SECRET,
            async_delay_seconds=0.5, webhook_retry_delays=webhook_retry_delays,
            expiry_poll_seconds=0.2)
        super().__init__(create_stripe(self.config), port)
        self.http = httpx.Client(base_url=self.url, timeout=30,
                                 headers={"Authorization": f"Bearer {STRIPE_KEY}"})

    def app_settings(self) -> dict[str, object]:
        """The settings that point the app at this service, with its keys."""
        return {"stripe_secret_key": STRIPE_KEY, "stripe_webhook_secret": WEBHOOK_SECRET,
                "stripe_api_base": self.url}

    def events(self, session_id: str | None = None) -> list[dict]:
        found = self.http.get("/_test/events").json()
        items = found["data"] if isinstance(found, dict) else found
        if session_id is None:
            return items
        return [e for e in items if session_id in str(e)]

    def pay(self, session_id: str, method: str = "card", card: str = "4242424242424242",
            force: bool = False) -> httpx.Response:
        return self.http.post(f"/_test/sessions/{session_id}/pay",
                              data={"method": method, "card": card, "force": "1" if force else ""})

    def refunds(self, payment_intent: str) -> list[dict]:
        return self.http.get("/v1/refunds", params={"payment_intent": payment_intent}).json()["data"]


class SseClient:
    """A real SSE client on its own thread: keeps every message (id and data)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url, self.headers = url, headers or {}
        self.messages: list[tuple[str | None, str]] = []
        self.status: int | None = None
        self._response: httpx.Response | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._client = httpx.Client(timeout=httpx.Timeout(60, read=120))
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self.url, headers=self.headers) as r:
                self.status, self._response = r.status_code, r
                event_id, data = None, []
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("id: "):
                        event_id = line[4:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line == "" and (data or event_id):
                        self.messages.append((event_id, "\n".join(data)))
                        event_id, data = None, []
        except httpx.HTTPError:
            pass

    def state(self, start: str) -> str | None:
        """The latest state announced for the cell starting at `start`."""
        found = None
        for _, data in self.messages:
            m = re.search(rf'data-start="{re.escape(start)}" data-state="(\w+)"', data)
            if m:
                found = m.group(1)
        return found

    def wait_state(self, start: str, state: str, timeout: float = 15.0) -> None:
        wait_for(lambda: self.state(start) == state, timeout, f"{start} {state} over SSE")

    @property
    def finished(self) -> bool:
        """Whether the server ended the stream (or it failed)."""
        return not self._thread.is_alive()

    def last_id(self) -> str | None:
        return next((i for i, _ in reversed(self.messages) if i), None)

    def close(self) -> None:
        self._stop.set()
        if self._response is not None:
            self._response.close()
        self._client.close()
        self._thread.join(5)
