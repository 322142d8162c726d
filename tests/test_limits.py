"""What keeps one server process up under too many clients: live streams capped per process
and per client address (the page still works), a deadline for reading a request (no
slowloris), and the open-file limit raised at start."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
import time

import httpx
import pytest

from dentbook.protocol import DentbookProtocol
from helpers import Server, app_settings, next_week, wait_for


def _from(address: str) -> httpx.Client:
    return httpx.Client(timeout=30, transport=httpx.HTTPTransport(local_address=address))


@pytest.fixture
def capped(pg):
    app = Server(app_settings(pg, max_streams=3, max_streams_per_client=2)).start()
    yield app
    app.stop()


def test_streams_are_capped_per_client_and_per_process(capped, clinic):
    def open_streams() -> float | None:  # as /metrics reports them
        return capped.app.state.metrics.registry.get_sample_value("dentbook_sse_streams")
    base = capped.url
    with httpx.Client(base_url=base) as c:
        week = next_week(c, clinic.slug)
    url = (f"{base}/{clinic.slug}/events?doctor={clinic.doctors[0]}"
           f"&visit={clinic.visits['short']}&week={week}")
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(_from(a)) for a in
                   ("127.0.0.5", "127.0.0.5", "127.0.0.5", "127.0.0.6", "127.0.0.7")]
        for i in (0, 1):
            assert stack.enter_context(clients[i].stream("GET", url)).status_code == 200
        third = stack.enter_context(clients[2].stream("GET", url))  # the same address again
        assert third.status_code == 429 and int(third.headers["retry-after"]) > 0
        other = stack.enter_context(clients[3].stream("GET", url))  # another address: fine
        assert other.status_code == 200
        full = stack.enter_context(clients[4].stream("GET", url))  # the process holds three
        assert full.status_code == 503 and int(full.headers["retry-after"]) > 0
        assert open_streams() == 3
        # the page itself still works; only live updates wait
        assert clients[4].get(f"{base}/{clinic.slug}").status_code == 200
    # closed streams give their places back
    deadline = time.monotonic() + 10
    while capped.app.state.streams.open and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_streams() == 0
    with _from("127.0.0.5") as again, again.stream("GET", url) as r:
        assert r.status_code == 200


def test_an_open_stream_keeps_no_request_task(capped, clinic):
    """Once a stream has sent its first message the connection is the stream's: the request's
    task (and every frame and object of Litestar's it held) is gone, and the stream is still
    counted until the client leaves."""
    with httpx.Client(base_url=capped.url) as c:
        week = next_week(c, clinic.slug)
    url = (f"{capped.url}/{clinic.slug}/events?doctor={clinic.doctors[0]}"
           f"&visit={clinic.visits['short']}&week={week}")
    state = capped.server.server_state
    with contextlib.ExitStack() as stack:
        lines = []  # kept: a line iterator that is let go closes its stream
        for address in ("127.0.0.5", "127.0.0.6"):
            stream = stack.enter_context(stack.enter_context(_from(address)).stream("GET", url))
            assert stream.status_code == 200
            lines.append(stream.iter_lines())
            assert next(lines[-1]).startswith(("id:", "data:", "event:", "retry:"))
        wait_for(lambda: not state.tasks, 10, "no request task left")
        assert capped.app.state.streams.open == 2 and len(state.connections) >= 2
    wait_for(lambda: capped.app.state.streams.open == 0, 10, "the streams to end with their clients")


class _Quick(DentbookProtocol):
    read_timeout = 1.0


def test_a_request_sent_too_slowly_is_cut_off(pg):
    app = Server(app_settings(pg), protocol=_Quick).start()
    try:
        slow = socket.create_connection(("127.0.0.1", app.settings.port))
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        slow.settimeout(10)
        started = time.monotonic()
        assert slow.recv(1024) == b""  # closed by the server
        assert time.monotonic() - started < 9
        silent = socket.create_connection(("127.0.0.1", app.settings.port))
        silent.settimeout(10)
        assert silent.recv(1024) == b""  # a connection that never says anything, likewise
        # a prompt client on a kept-alive connection is served as usual, twice
        with httpx.Client(base_url=app.url) as c:
            assert c.get("/healthz").status_code == 200
            time.sleep(1.5)
            assert c.get("/healthz").status_code == 200
    finally:
        app.stop()


def test_the_open_file_limit_is_raised_to_the_hard_limit():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip("this machine's hard limit leaves nothing to raise")
    code = ("import resource as r; h = r.getrlimit(r.RLIMIT_NOFILE)[1]; "
            "r.setrlimit(r.RLIMIT_NOFILE, (256, h)); "
            "from dentbook.serve import raise_file_limit; "
            "print(raise_file_limit(), r.getrlimit(r.RLIMIT_NOFILE)[0], h)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    returned, now, hard_limit = map(int, out.stdout.split())
    assert returned == now == hard_limit > 256
