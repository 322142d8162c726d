"""`dentbook serve --workers N`: N server processes on one port, each listening on a socket
of its own (SO_REUSEPORT), so the kernel spreads new connections evenly among them.

uvicorn's own `--workers` shares one listening socket, and asyncio accepts every connection
waiting on it at each wake-up: whichever process woke first took a whole burst. Measured on
the holds benchmark (16 keep-alive connections opened at once): one of two processes did
74 % of the work while the other idled, and holds per second varied by a third from run to
run. Here each process has its own accept queue and the kernel picks one per connection.

The supervisor starts the processes, starts a process again if one dies, and on SIGTERM or
SIGINT passes SIGTERM on and waits: each process shuts down gracefully on its own (streams
told to reconnect, requests in flight finished; see dentbook.protocol).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.connection import wait
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn

from dentbook.settings import SettingsError

log = logging.getLogger("dentbook.serve")

RESTART_PAUSE_SECONDS = 1.0  # between restarts of a process that keeps dying


class PortTaken(SettingsError):
    """Something already listens on the address (the way out is the operator's)."""


def run(config: dict[str, Any], workers: int) -> None:
    """Serve uvicorn `config` (keyword arguments of uvicorn.Config, without `workers`) from
    `workers` processes until SIGTERM or SIGINT. Check `refuse_if_taken` first."""
    spawn = multiprocessing.get_context("spawn")
    processes = [_start(spawn, config) for _ in range(workers)]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping:
            wait([p.sentinel for p in processes], timeout=1.0)
            for i, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    log.error("a server process exited; starting another",
                              extra={"pid": process.pid, "exit_code": process.exitcode})
                    time.sleep(RESTART_PAUSE_SECONDS)
                    processes[i] = _start(spawn, config)
        for process in processes:
            process.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _start(spawn: SpawnContext, config: dict[str, Any]) -> BaseProcess:
    process = spawn.Process(target=_serve_one, args=(config,), name="dentbook-worker")
    process.start()
    return process


def _serve_one(config: dict[str, Any]) -> None:
    """One server process: its own socket on the shared port, then uvicorn on it."""
    server = uvicorn.Server(uvicorn.Config(**config))
    server.run(sockets=[listening_socket(config["host"], config["port"], reuse_port=True)])


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP: asyncio turns Nagle off on what it accepts (see dentbook.protocol).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def refuse_if_taken(host: str, port: int) -> None:
    """Raise PortTaken if anything listens on host:port. A socket without SO_REUSEPORT cannot
    bind where one listens, with or without it; the processes' own sockets would quietly
    share the port with another `dentbook serve` that allows it."""
    try:
        listening_socket(host, port, reuse_port=False).close()
    except OSError as exc:
        raise PortTaken(f"cannot listen on {host}:{port} ({exc.strerror}): stop what uses "
                        "it or set DENTBOOK_PORT to a free port") from exc
