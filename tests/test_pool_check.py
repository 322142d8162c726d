"""The pool's check before handing out a connection (dentbook.db.Database._check): one that
idled is checked, so a connection the server closed meanwhile is replaced, not handed to a
request; one back from a request a moment ago is handed out as it is (no extra round trip)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from dentbook import db as dbmodule
from dentbook.db import Database, Level
from helpers import run_async


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every check the pool runs, counted (the check itself still runs)."""
    calls: list[int] = []
    real = AsyncConnectionPool.check_connection

    async def counted(conn: psycopg.AsyncConnection[object]) -> None:
        calls.append(conn.info.backend_pid)
        await real(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted))
    return calls


async def _backend_pid(database: Database) -> int:
    async with database.transaction(Level.ANON) as conn:
        row = await (await conn.execute("select pg_backend_pid()")).fetchone()
    assert row is not None
    return int(row[0])


def test_a_connection_reused_at_once_is_not_checked_again(pg, checks):
    async def run() -> list[int]:
        database = Database(pg.app, min_size=1, max_size=1)
        await database.open()
        try:
            return [await _backend_pid(database) for _ in range(5)]
        finally:
            await database.close()

    pids = run_async(run())
    assert len(set(pids)) == 1  # one connection throughout
    assert len(checks) == 1  # checked when first handed out, never while in constant use


def test_a_connection_closed_by_the_server_while_idle_is_replaced(pg, checks, monkeypatch):
    monkeypatch.setattr(dbmodule, "FRESH", 0.2)

    async def run() -> tuple[int, int]:
        database = Database(pg.app, min_size=1, max_size=1)
        await database.open()
        try:
            first = await _backend_pid(database)
            with psycopg.connect(pg.owner, autocommit=True) as admin:
                admin.execute("select pg_terminate_backend(%s)", (first,))
            await asyncio.sleep(0.3)  # idle longer than FRESH: checked before it is handed out
            return first, await _backend_pid(database)
        finally:
            await database.close()

    first, second = run_async(run())
    assert second != first  # the request got a new connection, not the dead one
    assert first in checks  # the dead one was checked (and found dead)
