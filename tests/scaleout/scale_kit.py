"""Scale-out test kit: `dentbook serve` processes started as an operator starts them (request
connections through PgBouncer, LISTEN straight to PostgreSQL), a raw SSE reader that keeps
every line (`retry:` included) and how the stream ended, and /metrics read with
prometheus_client's own parser."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dentbook.db import Database, Level
from dentbook.logs import request_id
from helpers import STRIPE_KEY, WEBHOOK_SECRET, Pg, free_port, is_ready, run_async, wait_for


@dataclass(frozen=True)
class Bouncer:
    """PgBouncer in transaction pooling mode, in front of the suite's PostgreSQL."""

    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> Bouncer:
        parts = conninfo_to_dict(url)
        return cls(str(parts.get("host") or "127.0.0.1"), int(parts.get("port") or 6432))

    def url(self, direct: str) -> str:
        """`direct` (a URL of the test database) through PgBouncer instead."""
        return make_conninfo(direct, host=self.host, port=self.port)


class Serve:
    """`dentbook serve` in a process group of its own (it starts a mail sink beside it): SIGTERM
    asks it to stop as systemd would; SIGKILL of the group is the machine dying."""

    def __init__(self, pg: Pg, bouncer: Bouncer | None, stripe_url: str, logs: Path,
                 workers: int = 1, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logs / f"serve-{self.port}.log"
        self.workers = workers
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DENTBOOK_", "STRIPE_"))}
        env.update({
            "DATABASE_URL": bouncer.url(pg.app) if bouncer else pg.app,
            "DATABASE_DIRECT_URL": pg.app,
            "DENTBOOK_SECRET_KEY": "scale-test-secret",
            "STRIPE_SECRET_KEY": STRIPE_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": stripe_url,
            "DENTBOOK_MAX_HOLDS_PER_IP": "100000", "DENTBOOK_MAX_HOLDS_PER_EMAIL": "100000",
            # Correctness under a loaded machine, not latency: wait for a connection rather
            # than answer 503 while two shared cores serve hundreds of requests.
            "DENTBOOK_POOL_TIMEOUT_SECONDS": "120",
            "DENTBOOK_SHUTDOWN_SECONDS": "30",
            "DENTBOOK_METRICS": "local",
            "PYTHONUNBUFFERED": "1",
        })
        env.update({f"DENTBOOK_{k.upper()}": v for k, v in settings.items()})
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Serve:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dentbook", "serve", "--port", str(self.port),
             "--workers", str(self.workers)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_for(self._up, timeout=90, what=f"dentbook serve on {self.port}")
        return self

    def _up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"dentbook serve exited: {self.log()[-3000:]}")
        return is_ready(self.url)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self) -> int:
        """SIGTERM, as systemd stops a service; its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def kill(self) -> None:
        """SIGKILL to the whole group: no shutdown, connections cut, like a host dying."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.terminate()
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # anything the group left behind
            except ProcessLookupError:
                pass


class RawSse:
    """An SSE client on its own thread keeping every line, and how the stream ended:
    "ended" (the server finished the response) or the error that cut it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lines: list[str] = []
        self.status: int | None = None
        self.outcome: str | None = None
        self._response: httpx.Response | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=300))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self.url) as r:
                self.status, self._response = r.status_code, r
                for line in r.iter_lines():
                    self.lines.append(line)
            self.outcome = "ended"
        except httpx.HTTPError as exc:
            self.outcome = type(exc).__name__

    @property
    def started(self) -> bool:
        return any(line.startswith("data: ") for line in self.lines)

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._client.close()
        self._thread.join(5)


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """/metrics of the app at `url`, parsed by prometheus_client: (name, labels) -> value."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.status_code
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def app_names(pg, url: str) -> list[tuple[str, str]]:
    """application_name in a transaction of dentbook.db made for a request, as the
    transaction sees it and as pg_stat_activity shows it; then in one made for no request."""
    found = []

    async def run() -> None:
        db = Database(url, min_size=1, max_size=1, prepare=False)
        await db.open()
        token = request_id.set("req-19abc")
        try:
            with psycopg.connect(pg.owner) as watch:
                async with db.transaction(Level.ANON) as conn:
                    own, pid = await (await conn.execute(
                        "select current_setting('application_name'), pg_backend_pid()")).fetchone()
                    (seen,) = watch.execute("select application_name from pg_stat_activity"
                                            " where pid = %s", (pid,)).fetchone()
                    found.append((own, seen))
            request_id.reset(token)
            async with db.transaction(Level.ANON) as conn:
                (after,) = await (await conn.execute("select current_setting('application_name')")).fetchone()
                found.append((after, after))
        finally:
            await db.close()

    run_async(run())
    return found
