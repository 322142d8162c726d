"""`dentbook serve`: everything a fresh machine needs, then uvicorn.

With no DATABASE_URL: start the embedded PostgreSQL, migrate it, load the demo on first
start, and run as the unprivileged role. With no STRIPE_SECRET_KEY: start the local
Stripe service next to us. Settings reach the worker processes through the environment.
"""

from __future__ import annotations

import logging
import os
import resource
import secrets
import signal
import subprocess
from pathlib import Path

import psycopg
import uvicorn

from dentbook import demo
from dentbook.embedded import EmbeddedPostgres, default_data_dir
from dentbook.migrate import check_current, migrate
from dentbook.protocol import DentbookProtocol
from dentbook.settings import load_settings
from dentbook.stripe_local import launch as local_stripe

log = logging.getLogger("dentbook.serve")


def serve(workers: int = 1, host: str | None = None, port: int | None = None) -> int:
    overrides: dict[str, object] = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = load_settings(None, **overrides)
    env: dict[str, str] = {"DENTBOOK_HOST": settings.host, "DENTBOOK_PORT": str(settings.port)}
    data_dir = Path(settings.data_dir) if settings.data_dir else default_data_dir()
    server = stripe = None
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
        os.environ.update(env)
        log.info("serving", extra={"url": load_settings().base_url, "workers": workers})
        # uvicorn re-raises SIGTERM once it has shut down; with Python's default handler
        # that would kill us before the cleanup below stops PostgreSQL and the local Stripe.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        files = raise_file_limit()
        uvicorn.run("dentbook.app:create_app_from_env", factory=True, host=settings.host,
                    port=settings.port, workers=workers, log_config=None,
                    timeout_graceful_shutdown=3, server_header=False, http=DentbookProtocol,
                    # Client addresses come from dentbook.web.clients (trusted proxies only).
                    proxy_headers=False,
                    # Beyond this many connections and tasks, answer 503 at once instead
                    # of running out of file descriptors (streams are capped lower).
                    limit_concurrency=max(100, files - 256))
    finally:
        if stripe is not None:
            stripe.terminate()
            stripe.wait(10)
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
