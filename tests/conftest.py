"""Shared fixtures: a real PostgreSQL (DATABASE_URL, else the embedded one), a fresh
database per test run, clinics made per test, and the app served over real HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from dentbook import admin, demo
from dentbook.embedded import EmbeddedPostgres, default_data_dir
from dentbook.migrate import migrate
from helpers import STRIPE_KEY, WEBHOOK_SECRET, LocalStripe, Server, app_settings, free_port


@dataclass(frozen=True)
class Pg:
    """URLs of the test database: `owner` is privileged, `app` is the runtime role."""

    owner: str
    app: str
    server: str  # privileged URL of the maintenance database, for restarts and drops


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


@pytest.fixture(scope="session")
def stripe_local_and_server(pg: Pg) -> Iterator[tuple[LocalStripe, Server]]:
    app_port, stripe_port = free_port(), free_port()
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
