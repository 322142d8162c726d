"""`dentbook serve`: everything a fresh machine needs, then uvicorn.

With no DATABASE_URL: start the embedded PostgreSQL, migrate it, load the demo on first
start, and run as the unprivileged role. With no STRIPE_SECRET_KEY: start the local
Stripe service next to us. Settings reach the worker processes through the environment.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import uvicorn

from dentbook import demo
from dentbook import workers as server_workers
from dentbook.embedded import EmbeddedPostgres, default_data_dir
from dentbook.migrate import check_current, migrate
from dentbook.protocol import DentbookProtocol
from dentbook.settings import SettingsError, load_settings
from dentbook.stripe_local import launch as local_stripe

log = logging.getLogger("dentbook.serve")


def serve(workers: int = 1, host: str | None = None, port: int | None = None) -> int:
    overrides: dict[str, object] = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = load_settings(None, **overrides)
    env: dict[str, str] = {"DENTBOOK_HOST": settings.host, "DENTBOOK_PORT": str(settings.port)}
    data_dir = Path(settings.data_dir) if settings.data_dir else default_data_dir()
    # First, and plainly: where the app will be. Everything else follows.
    log.info(f"dentbook is starting at {settings.base_url} (Ctrl-C stops it)",
             extra={"url": settings.base_url, "workers": workers})
    server_workers.refuse_if_taken(settings.host, settings.port)
    server = stripe = sink = None
    try:
        if settings.database_url:
            with psycopg.connect(settings.database_url) as conn:
                check_current(conn)
        else:
            server = EmbeddedPostgres(data_dir)
            server.start()
            migrate(server.url())
            if demo.is_empty(server.url()):
                demo.load(server.url())
                log.info("demo clinics loaded", extra={"clinics": list(demo.CLINICS)})
            env["DATABASE_URL"] = server.url(user="dentbook_app")
        env["DENTBOOK_SECRET_KEY"] = settings.secret_key or _secret(data_dir, settings.database_url)
        if not settings.stripe_secret_key:
            stripe, stripe_env = _start_local_stripe(settings.base_url, settings.local_stripe_port)
            env.update(stripe_env)
        if not settings.smtp_url:
            sink, sink_env = _start_mail_sink(data_dir / "mail")
            env.update(sink_env)
        os.environ.update(env)
        # uvicorn re-raises SIGTERM once it has shut down; with Python's default handler
        # that would kill us before the cleanup below stops PostgreSQL and the local Stripe.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        files = raise_file_limit()
        config: dict[str, Any] = dict(
            app="dentbook.app:create_app_from_env", factory=True, host=settings.host,
            port=settings.port, log_config=None, server_header=False,
            # Then streams are told to reconnect and requests in flight get this long.
            timeout_graceful_shutdown=settings.shutdown_seconds, http=DentbookProtocol,
            # Client addresses come from dentbook.web.clients (trusted proxies only).
            proxy_headers=False,
            # Beyond this many connections and tasks, answer 503 at once instead
            # of running out of file descriptors (streams are capped lower).
            limit_concurrency=max(100, files - 256))
        if workers > 1:
            server_workers.run(config, workers)  # a socket each (see dentbook.workers)
        else:
            uvicorn.run(**config)
    finally:
        for child in (stripe, sink):
            if child is not None:
                child.terminate()
                child.wait(10)
        if server is not None:
            server.stop()
    return 0


def raise_file_limit() -> int:
    """Raise this process's soft open-file limit to the hard one (each live stream is an
    open socket; the default 1024 would stop a server at ~1,000 calendars). Returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft if soft != resource.RLIM_INFINITY else 65536


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _secret(data_dir: Path, external: str) -> str:
    """A signing key that survives restarts (kept in the data directory)."""
    if external:
        log.warning("DENTBOOK_SECRET_KEY is not set: forms break on restart and across machines")
        return secrets.token_urlsafe(32)
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _start_local_stripe(app_url: str, port: int) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """The local Stripe service as our child, and the settings that point the app at it.

    Raises LocalStripeError (a SettingsError) when the port is taken or the child fails.
    """
    credentials = local_stripe.Credentials.generate()
    proc = local_stripe.start(port, f"{app_url}/webhooks/stripe", credentials)
    base = f"http://127.0.0.1:{port}"
    log.info("local Stripe (test mode) ready", extra={"url": base})
    return proc, {"STRIPE_SECRET_KEY": credentials.api_key,
                  "STRIPE_WEBHOOK_SECRET": credentials.webhook_secret, "STRIPE_API_BASE": base}


def _start_mail_sink(directory: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The local mail sink as our child (loopback only, relays nothing), and the settings
    that send the app's mail to it and show what it caught at /dev/mail."""
    proc = subprocess.Popen(  # noqa: S603 - our own module, our own arguments
        [sys.executable, "-m", "dentbook.mail.sink", "--dir", str(directory), "--port", "0"],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # "... listening on smtp://127.0.0.1:PORT, ..."
    found = re.search(r"smtp://[\w.:\[\]]+", first)
    if found is None:
        proc.kill()
        raise SettingsError(f"the local mail sink did not start: {first.strip() or 'no output'}")
    log.info("local mail sink ready (caught mail is shown at /dev/mail)",
             extra={"url": found.group(0), "dir": str(directory)})
    return proc, {"SMTP_URL": found.group(0), "DENTBOOK_MAIL_SINK_DIR": str(directory)}
