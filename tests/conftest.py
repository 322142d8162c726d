"""Shared fixtures: a real PostgreSQL (DATABASE_URL, else the embedded one), a fresh
database per test run, clinics made per test, and the app served over real HTTP."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from dentbook.embedded import EmbeddedPostgres, default_data_dir
from dentbook.mail.sink import MailSink
from dentbook.settings import Settings
from helpers import (
    ClinicData,
    LocalStripe,
    Pg,
    Server,
    create_database,
    drop_database,
    free_port,
    new_clinic,
    stripe_and_app,
)


@pytest.fixture(scope="session")
def pg() -> Iterator[Pg]:
    given = os.environ.get("DATABASE_URL")
    embedded = None
    if given:
        server = given
    else:
        root = Path(os.environ.get("DENTBOOK_TEST_DATA_DIR", str(default_data_dir()) + "-test"))
        embedded = EmbeddedPostgres(root)
        embedded.start()
        server = embedded.url(database="postgres")
    database = create_database(server)
    yield database
    drop_database(database)
    if embedded:
        embedded.stop()


@pytest.fixture
def private_pg(pg: Pg) -> Iterator[Pg]:
    """A database of the test's own, for app processes with a Stripe of their own: every
    process on a database shares its jobs (refunds, e-mail), as in production, where they
    all talk to one Stripe account; the suite's shared server talks to another."""
    database = create_database(pg.server)
    yield database
    drop_database(database)


@pytest.fixture
def make_clinic(pg: Pg) -> Callable[..., ClinicData]:
    """Create a fresh clinic (own slug) with doctors on the demo's hours and visit types."""
    return functools.partial(new_clinic, pg)


@pytest.fixture
def clinic(make_clinic) -> ClinicData:
    return make_clinic()


@pytest.fixture(scope="session")
def mail_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    """The local mail sink the suite's server sends every e-mail to, on a real socket."""
    sink = MailSink(tmp_path_factory.mktemp("mail")).start_thread()
    yield sink
    sink.stop_thread()


@pytest.fixture(scope="session")
def stripe_local_and_server(pg: Pg, mail_sink: MailSink) -> Iterator[tuple[LocalStripe, Server]]:
    local, app = stripe_and_app(pg, smtp_url=mail_sink.url, mail_sink_dir=str(mail_sink.directory),
                                job_retry_seconds=1)
    yield local, app
    app.stop()
    local.stop()


@pytest.fixture
def recording_stripe() -> Iterator[LocalStripe]:
    """A local Stripe of the test's own whose webhooks go nowhere (its events are recorded)."""
    local = LocalStripe(free_port(), None).start()
    yield local
    local.stop()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    """A mail sink of the test's own, on a free port."""
    sink = MailSink(tmp_path / "mail").start_thread()
    yield sink
    sink.stop_thread()


@pytest.fixture
def start_app() -> Iterator[Callable[[Settings], Server]]:
    """Starts the app with the given settings; whatever is still running when the test ends
    is stopped then."""
    started: list[Server] = []

    def start(settings: Settings) -> Server:
        started.append(Server(settings).start())
        return started[-1]

    yield start
    for app in reversed(started):
        app.stop()


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
