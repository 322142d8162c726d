"""The zero-setup default: `dentbook serve` with nothing configured starts an embedded
PostgreSQL, migrates it, loads the demo, serves, and stops it all on SIGTERM; as root it
never loosens a directory it does not own."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from dentbook.embedded import EmbeddedError, EmbeddedPostgres
from helpers import free_port, wait_for


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_with_nothing_configured(tmp_path_factory):
    data = Path(tempfile.mkdtemp(prefix="dentbook-serve-", dir="/var/tmp"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "STRIPE_"))}
    env.update(DENTBOOK_DATA_DIR=str(data), DENTBOOK_PORT=str(port),
               DENTBOOK_LOCAL_STRIPE_PORT=str(free_port()))
    log = (data / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "dentbook", "serve"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _up(f"http://127.0.0.1:{port}/readyz"), timeout=90, what="serve")
        page = httpx.get(f"http://127.0.0.1:{port}/klinika-alfa", timeout=10)
        assert page.status_code == 200 and "data-slot" in page.text
        assert (data / "pgdata" / "postmaster.pid").exists()
        # no mail server configured: the local sink catches mail, shown at /dev/mail
        assert httpx.get(f"http://127.0.0.1:{port}/dev/mail.json", timeout=10).json() == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    assert proc.returncode == 0
    assert not (data / "pgdata" / "postmaster.pid").exists(), "embedded PostgreSQL left running"
    lines = (data / "serve.log").read_text().splitlines()
    # the first thing said is where the app is; output to a file is JSON, never colour codes
    assert json.loads(lines[0])["msg"] == f"dentbook is starting at http://127.0.0.1:{port} (Ctrl-C stops it)"
    assert all(json.loads(line) for line in lines if line.startswith("{"))
    assert "\x1b[" not in "".join(lines) and "\\u001b" not in "".join(lines)


@pytest.mark.skipif(os.geteuid() != 0, reason="the permission rule concerns running as root")
def test_as_root_a_closed_parent_is_refused_not_loosened(tmp_path):
    closed = tmp_path / "private"
    closed.mkdir(mode=0o700)
    before = stat.S_IMODE(closed.stat().st_mode)
    with pytest.raises(EmbeddedError, match="never loosen"):
        EmbeddedPostgres(closed / "data").start()
    assert stat.S_IMODE(closed.stat().st_mode) == before == 0o700
