"""A small HTTP/1.1 client on raw asyncio streams, so the load generator costs little CPU.

httpx spends more CPU per request than the server's fastest endpoints do; with client and
server sharing two cores, that would hide the server's own figures. This client does what
the benchmarks need and no more: keep-alive GET and form POST, Content-Length or chunked
bodies, a bounded load loop over a fixed number of connections.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from bench.common import HOST

CSRF = re.compile(rb'name="_csrf_token" value="([^"]+)"')


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def cookies(self) -> list[str]:
        return [v.split(";", 1)[0] for k, v in self.headers if k == "set-cookie"]


def get(path: str, cookie: str = "", extra: str = "") -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    return (head + extra + "\r\n").encode()


def post_form(path: str, fields: dict[str, str], cookie: str = "") -> bytes:
    body = urlencode(fields).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n")
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    return head.encode() + b"\r\n" + body


class Connection:
    """One keep-alive connection; `request` sends raw bytes and reads one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.closed = False

    @classmethod
    async def open(cls, port: int, limit_s: float = 10.0) -> Connection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, port, limit=4 * 1024 * 1024), limit_s)
        return cls(reader, writer)

    def send(self, raw: bytes) -> None:
        self.writer.write(raw)

    async def read(self) -> Response:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = [(k.strip().lower(), v.strip()) for k, v in
                   (line.split(":", 1) for line in lines[1:] if ":" in line)]
        names = {k: v for k, v in headers}
        if "content-length" in names:
            body = await self.reader.readexactly(int(names["content-length"]))
        elif names.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        else:
            body = b""
        if names.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, body)

    async def request(self, raw: bytes, limit_s: float = 30.0) -> Response:
        self.send(raw)
        return await asyncio.wait_for(self.read(), limit_s)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


async def fetch(port: int, raw: bytes, limit_s: float = 30.0) -> Response:
    conn = await Connection.open(port)
    try:
        return await conn.request(raw, limit_s)
    finally:
        conn.close()


async def browser_session(port: int, page: str) -> tuple[str, str]:
    """Open a page as a browser would; return (cookie header, CSRF form token)."""
    resp = await fetch(port, get(page))
    m = CSRF.search(resp.body)
    if resp.status != 200 or m is None:
        raise RuntimeError(f"GET {page}: {resp.status}, no CSRF token")
    return "; ".join(resp.cookies()), m.group(1).decode()


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    elapsed: float = 0.0
    completed_in_time: bool = True

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def load(port: int, make: Callable[[int], bytes], total: int, connections: int,
               time_limit: float, ok: Callable[[Response], bool] | None = None) -> LoadResult:
    """`total` requests (request i is `make(i)`) over `connections` keep-alive connections,
    stopping early after `time_limit` seconds. Latency is kept for the answers `ok` accepts."""
    result = LoadResult()
    next_index = 0
    started = time.perf_counter()
    deadline = started + time_limit

    async def worker() -> None:
        nonlocal next_index
        conn: Connection | None = None
        while next_index < total and time.perf_counter() < deadline:
            i = next_index
            next_index += 1
            try:
                if conn is None or conn.closed:
                    conn = await Connection.open(port)
                t0 = time.perf_counter()
                resp = await conn.request(make(i), limit_s=max(1.0, deadline - t0 + 5))
                t1 = time.perf_counter()
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                result.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            result.statuses[resp.status] += 1
            if ok is None or ok(resp):
                result.latencies.append(t1 - t0)
        if conn is not None:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    result.elapsed = time.perf_counter() - started
    result.completed_in_time = next_index >= total
    return result


async def open_many(port: int, n: int, batch: int = 200) -> list[Connection]:
    """Open `n` connections (a batch at a time, so the listen backlog never overflows)."""
    conns: list[Connection] = []
    for first in range(0, n, batch):
        conns += await asyncio.gather(*(Connection.open(port, 30.0)
                                        for _ in range(min(batch, n - first))))
    return conns


async def burst(conns: list[Connection], requests: list[bytes],
                limit_s: float) -> list[tuple[Response | None, float]]:
    """Send one request on each open connection at once; (response or None, seconds) each.

    All requests are written before any answer is read, so they race as a crowd would.
    """
    starts: list[float] = []
    for conn, raw in zip(conns, requests, strict=True):
        conn.send(raw)
        starts.append(time.perf_counter())

    async def one(conn: Connection, t0: float) -> tuple[Response | None, float]:
        try:
            resp = await asyncio.wait_for(conn.read(), limit_s)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            return None, time.perf_counter() - t0
        return resp, time.perf_counter() - t0

    return await asyncio.gather(*(one(c, t) for c, t in zip(conns, starts, strict=True)))
