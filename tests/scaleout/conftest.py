"""Scale-out fixtures: PgBouncer (DENTBOOK_PGBOUNCER_URL, started by `.ci/pgbouncer start`; the
tests that need it skip without it, with the reason), the local Stripe, and two `dentbook
serve` processes on one database with their request connections through PgBouncer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from scale_kit import Bouncer, Serve

from helpers import LocalStripe, Pg

BOUNCER = "DENTBOOK_PGBOUNCER_URL"


@pytest.fixture(scope="session")
def bouncer() -> Bouncer:
    url = os.environ.get(BOUNCER)
    if not url:
        pytest.skip(f"{BOUNCER} is not set: start PgBouncer with `.ci/pgbouncer start DIR` "
                    f"and set {BOUNCER} to the URL it prints (CI does)")
    return Bouncer.from_url(url)


@pytest.fixture
def two_servers(private_pg: Pg, bouncer: Bouncer, recording_stripe: LocalStripe,
                tmp_path: Path) -> Iterator[tuple[Serve, Serve]]:
    """A and B (`dentbook serve`, one process each, so each /metrics is one process's), as two
    hosts would run them, on one database."""
    a = Serve(private_pg, bouncer, recording_stripe.url, tmp_path)
    b = Serve(private_pg, bouncer, recording_stripe.url, tmp_path)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()
