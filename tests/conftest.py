"""Shared fixtures: a real PostgreSQL (DATABASE_URL, else the embedded one), a fresh
database per test run, clinics made per test, and the app served over real HTTP."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from psycopg.conninfo import make_conninfo

from dentbook import admin, demo
from dentbook.app import create_app
from dentbook.embedded import EmbeddedPostgres, default_data_dir
from dentbook.migrate import migrate
from dentbook.settings import Settings, load_settings


@dataclass(frozen=True)
class Pg:
    """URLs of the test database: `owner` is privileged, `app` is the runtime role."""

    owner: str
    app: str
    server: str  # privileged URL of the maintenance database, for restarts and drops


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg() -> Iterator[Pg]:
    name = f"dentbook_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    given = os.environ.get("DATABASE_URL")
    embedded = None
    if given:
        server = given
    else:
        root = Path(os.environ.get("DENTBOOK_TEST_DATA_DIR", str(default_data_dir()) + "-test"))
        embedded = EmbeddedPostgres(root)
        embedded.start()
        server = embedded.url(database="postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    owner = make_conninfo(server, dbname=name)
    migrate(owner)
    demo.load(owner)
    yield Pg(owner=owner, app=make_conninfo(owner, user="dentbook_app"), server=server)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
    if embedded:
        embedded.stop()


@dataclass
class ClinicData:
    slug: str
    id: uuid.UUID
    doctors: list[uuid.UUID] = field(default_factory=list)
    visits: dict[str, uuid.UUID] = field(default_factory=dict)


@pytest.fixture
def make_clinic(pg: Pg):
    """Create a fresh clinic (own slug) with doctors on the demo's hours and visit types."""

    def make(doctors: int = 1, hours: str = "mon-fri 09:00-17:00",
             time_zone: str = "Europe/Warsaw") -> ClinicData:
        slug = f"t-{uuid.uuid4().hex[:10]}"
        c = ClinicData(slug, admin.add_clinic(pg.owner, slug, f"Test {slug}", time_zone))
        for i in range(doctors):
            c.doctors.append(admin.add_doctor(pg.owner, slug, f"dr Test {i}", hours))
        c.visits["short"] = admin.add_visit_type(pg.owner, slug, "Krótka", "Short", 30, 5000)
        c.visits["long"] = admin.add_visit_type(pg.owner, slug, "Długa", "Long", 90, 15000)
        return c

    return make


@pytest.fixture
def clinic(make_clinic) -> ClinicData:
    return make_clinic()


def next_weekday(after_days: int = 2, weekday: int = 2) -> date:
    """A date at least `after_days` ahead that falls on ISO `weekday` (default Tuesday)."""
    d = datetime.now(UTC).date() + timedelta(days=after_days)
    while d.isoweekday() != weekday:
        d += timedelta(days=1)
    return d


class Server:
    """The app served by uvicorn in a thread, on a free port: real HTTP."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=settings.port, log_config=None, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def start(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def app_settings(pg: Pg, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "database_url": pg.app, "port": _free_port(), "secret_key": "test-secret",
        "pool_max": 20,
    }
    base.update(overrides)
    return load_settings({}, **base)


STRIPE_KEY = "sk_test_dentbook_tests"
WEBHOOK_SECRET = "whsec_dentbook_tests"


class LocalStripe:
    """The shipped local Stripe service, served over real HTTP in a thread."""

    def __init__(self, port: int, webhook_url: str) -> None:
        from dentbook.stripe_local.app import create_app as create_stripe
        from dentbook.stripe_local.config import LocalStripeConfig

        self.config = LocalStripeConfig(
            api_key=STRIPE_KEY, port=port, webhook_url=webhook_url, webhook_secret=WEBHOOK_SECRET,
            async_delay_seconds=0.5, webhook_retry_delays=(0.2, 0.5, 1, 2),
            expiry_poll_seconds=0.2)
        self.server = uvicorn.Server(uvicorn.Config(
            create_stripe(self.config), host="127.0.0.1", port=port, log_config=None))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=30,
                                 headers={"Authorization": f"Bearer {STRIPE_KEY}"})

    def start(self) -> LocalStripe:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("local stripe did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

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


@pytest.fixture(scope="session")
def stripe_local_and_server(pg: Pg) -> Iterator[tuple[LocalStripe, Server]]:
    app_port, stripe_port = _free_port(), _free_port()
    local = LocalStripe(stripe_port, f"http://127.0.0.1:{app_port}/webhooks/stripe").start()
    app = Server(app_settings(pg, port=app_port, stripe_secret_key=STRIPE_KEY,
                              stripe_webhook_secret=WEBHOOK_SECRET,
                              stripe_api_base=local.url)).start()
    yield local, app
    app.stop()
    local.stop()


@pytest.fixture(scope="session")
def server(stripe_local_and_server) -> Server:
    return stripe_local_and_server[1]


@pytest.fixture(scope="session")
def stripe_local(stripe_local_and_server) -> LocalStripe:
    return stripe_local_and_server[0]


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as c:
        yield c
