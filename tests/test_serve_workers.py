"""`dentbook serve --workers N` (dentbook.workers): N processes on one port, each listening
on a socket of its own, so that connections opened at once are spread among them (one
shared socket let the first process to wake take them all); a process that dies is
replaced; SIGTERM stops them all; a port already in use is refused."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dentbook import workers
from helpers import free_port, wait_for

BURST = 32


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Each answer names the process that served it."""
    assert scope["type"] == "http"
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def supervisor() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    config = (f"dict(app='test_serve_workers:app', host='127.0.0.1', port={port}, "
              "lifespan='off', log_config=None, http=DentbookProtocol)")
    code = ("from dentbook import workers; from dentbook.protocol import DentbookProtocol; "
            f"workers.run({config}, 2)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:
        wait_for(lambda: len(_served_by(port)) == 2, 60, "both processes answering")
        yield proc, port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _served_by(port: int, n: int = BURST) -> Counter[int]:
    """Open `n` connections at once, then ask on each which process holds it."""
    conns: list[socket.socket] = []
    try:
        for _ in range(n):
            try:
                conns.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            except OSError:
                return Counter()
        for conn in conns:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        pids: Counter[int] = Counter()
        for conn in conns:
            answer = b""
            try:
                while chunk := conn.recv(4096):
                    answer += chunk
            except OSError:
                continue  # queued on a process that has just died: reset
            if answer.startswith(b"HTTP/1.1 200"):
                pids[int(answer.split(b"\r\n\r\n", 1)[1])] += 1
        return pids
    finally:
        for conn in conns:
            conn.close()


def test_connections_opened_at_once_are_spread_over_the_processes(supervisor):
    _, port = supervisor
    pids = _served_by(port)
    assert sum(pids.values()) == BURST
    # The kernel picks a socket per connection: both processes get a fair share (a split
    # this uneven or worse by chance: about 1 in 10^6).
    assert len(pids) == 2 and min(pids.values()) >= 4, pids


def test_a_process_that_dies_is_replaced(supervisor):
    _, port = supervisor
    first = set(_served_by(port))
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    # Meanwhile the other process serves every connection; then a new one joins it.
    wait_for(lambda: len(now := set(_served_by(port))) == 2 and victim not in now, 60,
             "a new process beside the survivor")


def test_sigterm_stops_every_process(supervisor):
    proc, port = supervisor
    pids = set(_served_by(port))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    for pid in pids:
        wait_for(lambda pid=pid: not _alive(pid), 10, f"process {pid} gone")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_port_in_use_is_refused(reuse_port: bool):
    """Taken by anything, or by another `dentbook serve` whose sockets allow sharing."""
    taken = workers.listening_socket("127.0.0.1", 0, reuse_port=reuse_port)
    taken.listen()
    try:
        with pytest.raises(workers.PortTaken, match="DENTBOOK_PORT"):
            workers.refuse_if_taken("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
