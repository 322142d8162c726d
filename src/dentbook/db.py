"""The connection pool and the one way to get a transaction: at a trust level, for a clinic.

Every transaction starts by taking one of the three trust levels of the runtime role
(anonymous, staff, service) and, when it acts for a clinic, setting `app.tenant_id`,
both local to that transaction. Row level security does the rest.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

Conn = psycopg.AsyncConnection[tuple[object, ...]]
T = TypeVar("T")


class Level(enum.StrEnum):
    ANON = "dentbook_anon"
    STAFF = "dentbook_staff"
    SERVICE = "dentbook_service"
    WORKER = "dentbook_worker"


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL could not be reached (or a connection broke mid-request)."""


# The trust level, the clinic, and the signed-in account (then the actor the audit log
# names is "staff"; SQL functions acting for a patient or Stripe say so themselves).
_ENTER = ("select set_config('role', %s, true), set_config('app.tenant_id', %s, true),"
          " set_config('app.staff_id', %s, true), set_config('app.actor', %s, true)")


class Database:
    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10,
                 timeout: float = 15.0) -> None:
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            open=False,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            # A connection that died with a database restart is replaced, not handed out.
            check=AsyncConnectionPool.check_connection,
            name="dentbook",
        )

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self, level: Level, tenant: UUID | None = None,
                          staff: UUID | None = None) -> AsyncIterator[Conn]:
        """One transaction at `level` for `tenant` (and the signed-in `staff` account, which
        SQL functions read to check its role); commits on success, rolls back on error."""
        async with self.connection() as conn, begin(conn, level, tenant, staff):
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A connection kept for several transactions (see `begin`), e.g. around a call
        to Stripe, so a request never queues for the pool twice."""
        try:
            async with self.pool.connection() as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    async def ping(self) -> bool:
        try:
            async with self.pool.connection(timeout=2.0) as conn:
                await conn.execute("select 1")
        except (PoolTimeout, psycopg.Error):
            return False
        return True


async def retry_deadlocks(attempt: Callable[[], Awaitable[T]], tries: int = 3) -> T:
    """Run `attempt` (one whole transaction) again when PostgreSQL picked it as a
    deadlock victim. Writing a booking row re-runs the exclusion check, which can wait on
    a racing insert that waits on us; the victim did nothing wrong and succeeds next time."""
    for _ in range(tries - 1):
        try:
            return await attempt()
        except psycopg.errors.DeadlockDetected:
            continue
    return await attempt()


@asynccontextmanager
async def begin(conn: Conn, level: Level, tenant: UUID | None = None,
                staff: UUID | None = None) -> AsyncIterator[Conn]:
    """A transaction on `conn` at `level` for `tenant` and `staff` (all local to it).

    In pipeline mode: BEGIN, the settings and the transaction's first query travel to the
    server together, and nothing waits for an answer until a result is read, so a hold is
    one round trip plus the COMMIT. Errors still surface where results are read (or at the
    COMMIT for statements whose results nobody reads)."""
    async with conn.pipeline(), conn.transaction():
        await conn.execute(_ENTER, (level.value, str(tenant) if tenant else "",
                                    str(staff) if staff else "", "staff" if staff else ""))
        yield conn
