"""Developer and CI sessions: `nox -s serve`, `nox -s test`, `nox -s lint`, `nox -s migrate`,
`nox -s bench`, `nox -s scaleout`."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "test"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def serve(session: nox.Session) -> None:
    """Run the app: embedded PostgreSQL, demo data, local Stripe, http://127.0.0.1:8000."""
    session.install("-e", ".")
    session.run("dentbook", "serve", *session.posargs)


@nox.session
def test(session: nox.Session) -> None:
    """The test suite (DATABASE_URL: a privileged URL of a server; else the embedded one)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def scaleout(session: nox.Session) -> None:
    """tests/scaleout through PgBouncer: DENTBOOK_PGBOUNCER_URL from `.ci/pgbouncer start DIR`
    (transaction pooling, in front of DATABASE_URL's server). Required here; `nox -s test`
    skips the PgBouncer tests without it."""
    if not os.environ.get("DENTBOOK_PGBOUNCER_URL"):
        session.error("DENTBOOK_PGBOUNCER_URL is not set: run `.ci/pgbouncer start DIR` and set it")
    session.install("-e", ".[test]")
    session.run("pytest", "tests/scaleout", "-ra", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint) and mypy (types) on the code."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session
def migrate(session: nox.Session) -> None:
    """Apply sql/ to DATABASE_URL (privileged), or to the embedded database."""
    session.install("-e", ".")
    session.run("dentbook", "migrate")


@nox.session
def i18n(session: nox.Session) -> None:
    """Extract messages and merge them into locales/{pl,en} (then translate pl)."""
    session.install("-e", ".")
    session.run("pybabel", "extract", "-F", "babel.cfg", "-k", "N_", "--no-location",
                "-o", "locales/messages.pot", ".")
    for lang in ("pl", "en"):
        session.run("pybabel", "update", "-i", "locales/messages.pot", "-l", lang, "-d", "locales",
                    "--no-location", "--no-fuzzy-matching")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks, full mode (~8 min): bench/results/latest.{md,json}, README "Benchmarks".

    DATABASE_URL: a privileged URL of a PostgreSQL server (else the embedded one).
    `nox -s bench -- --quick` checks that it works in under two minutes.
    """
    session.install("-e", ".")
    session.run("python", "-m", "bench", "--full", *session.posargs)
