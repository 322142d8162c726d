"""Browser fixtures: Debian's Chromium driven by Playwright against a real `dentbook serve`.

The server under test is a separate process started the way an operator starts it
(`dentbook serve --port N`, DATABASE_URL = the runtime role of the test database, no
STRIPE_SECRET_KEY so it starts the shipped local Stripe itself). Nothing is mocked.

Without Chromium (or the `playwright` package) the browser tests skip with the reason;
under CI=true that is a failure instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from browser_kit import ARTIFACTS, CHROMIUM, Shots, watch_console

from helpers import Pg, create_database, drop_database, free_port

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
DESKTOP = {"width": 1280, "height": 900}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; skip without it (fail under CI=true)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    return CHROMIUM


@dataclass(frozen=True)
class Live:
    url: str
    stripe_url: str
    log: Path


def _dentbook_command() -> list[str]:
    script = Path(sys.executable).parent / "dentbook"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dentbook"]


@pytest.fixture(scope="session")
def pg(pg: Pg) -> Iterator[Pg]:
    """The browser suite's own database (clinics made here land in it too): its `dentbook
    serve` has a local Stripe of its own, and every process on a database shares its jobs
    (refunds, e-mail), as processes of one deployment do."""
    own = create_database(pg.server)
    yield own
    drop_database(own)


@pytest.fixture(scope="session")
def live(pg: Pg) -> Iterator[Live]:
    """`dentbook serve` as a subprocess on free ports, ready when /readyz says so."""
    port, stripe_port = free_port(), free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "server.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DENTBOOK_", "STRIPE_"))}
    env.update({
        "DATABASE_URL": pg.app,
        "DENTBOOK_LOCAL_STRIPE_PORT": str(stripe_port),
        "DENTBOOK_SECRET_KEY": "test",
        # Every browser context here comes from 127.0.0.1: the per-client hold limit
        # (5 by default) would otherwise count all of this suite as one patient.
        "DENTBOOK_MAX_HOLDS_PER_IP": "1000",
        "PYTHONUNBUFFERED": "1",
    })
    log = log_path.open("wb")
    proc = subprocess.Popen([*_dentbook_command(), "serve", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dentbook serve exited ({proc.returncode}): "
                                   f"{log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dentbook serve not ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Live(url=url, stripe_url=f"http://127.0.0.1:{stripe_port}", log=log_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # serve stops its own local Stripe on the way out
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_context(browser, live, request):
    """Factory: `new_context(**options)` -> a fresh browser context (own cookies, own
    connections) on the live server. Console errors and uncaught page errors fail the test."""
    made = []

    def make(**options):
        opts = {"base_url": live.url, "viewport": DESKTOP, "locale": "pl-PL",
                "timezone_id": "Europe/Warsaw", **options}
        ctx = browser.new_context(**opts)
        ctx.set_default_timeout(15_000)
        made.append((ctx, watch_console(ctx)))
        return ctx

    yield make
    problems = []
    for ctx, console in made:
        problems.extend(console.problems())
        ctx.close()
    if problems and not getattr(request.node, "call_failed", False):
        pytest.fail("browser console reported problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def shots(request) -> Shots:
    """Screenshots of each step: test-artifacts/browser/<test>/<nn>-<step>.png."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = ARTIFACTS / name
    if folder.exists():
        shutil.rmtree(folder)
    return Shots(folder)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        # read by `new_context` at teardown (an expected failure counts as failed)
        item.call_failed = report.failed or hasattr(report, "wasxfail")
    return report


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives Debian's Chromium against `dentbook serve`")
