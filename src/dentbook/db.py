"""The connection pool and the one way to get a transaction: at a trust level, for a clinic.

Every transaction starts by taking one of the three trust levels of the runtime role
(anonymous, staff, service) and, when it acts for a clinic, setting `app.tenant_id`,
both local to that transaction. Row level security does the rest.

Nothing outlives a transaction on a connection (settings are `set_config(..., true)`, locks
are `pg_advisory_xact_lock`, no LISTEN, no temporary tables), so the pool may sit behind a
transaction pooler such as PgBouncer in pool_mode=transaction. The one exception is psycopg's
own: after a statement ran a few times on a connection it is prepared on that server
session, which a pooler may not hand back next time. `prepare=False` turns that off
(DENTBOOK_PREPARED_STATEMENTS; PgBouncer 1.21+ with max_prepared_statements keeps them).

Each transaction also sets `application_name` (local to it) to name the request it serves,
so `pg_stat_activity` and PostgreSQL's own logs (`%a` in log_line_prefix) show which request
a slow query or a lock wait belongs to; through PgBouncer too, as the server reports it.
"""

from __future__ import annotations

import enum
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar
from uuid import UUID

import psycopg
from psycopg.abc import Params
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from dentbook.logs import request_id

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
# names is "staff"; SQL functions acting for a patient or Stripe say so themselves), and
# the request served. One statement, one round trip, the same text every time.
_ENTER = ("select set_config('role', %s, true), set_config('app.tenant_id', %s, true),"
          " set_config('app.staff_id', %s, true), set_config('app.actor', %s, true),"
          " set_config('application_name', %s, true)")
APPLICATION = "dentbook"
# A connection returned to the pool less than this many seconds ago is handed out unchecked.
FRESH = 1.0


class Database:
    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10,
                 timeout: float = 15.0, prepare: bool = True) -> None:
        kwargs: dict[str, object] = {"application_name": APPLICATION}
        if not prepare:
            kwargs["prepare_threshold"] = None
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            kwargs=kwargs,
            open=False,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            check=self._check,
            name="dentbook",
        )
        self._returned_at: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()

    async def _check(self, conn: Conn) -> None:
        """Before a connection is handed out: one that has idled a while is checked with an
        empty query (a database restart meanwhile closed it; the pool then hands out another).
        One back from a request a moment ago is not: under load that saves every transaction
        a round trip, and one broken in that moment fails its request with the 503 a broken
        connection mid-request gets anyway."""
        if time.monotonic() - self._returned_at.get(conn, -FRESH) >= FRESH:
            await AsyncConnectionPool.check_connection(conn)

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
                try:
                    yield conn
                finally:
                    self._returned_at[conn] = time.monotonic()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    async def one_shot(self, level: Level, tenant: UUID | None, kind: type[T], query: str,
                       params: Params) -> T | None:
        """`query`'s first row as `kind`: the statement is a transaction of its own at `level`
        for `tenant`, sent with the transaction's settings in one round trip (see `one_shot`)."""
        async with self.connection() as conn:
            return await one_shot(conn, level, tenant, kind, query, params)

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


async def one_shot(conn: Conn, level: Level, tenant: UUID | None, kind: type[T], query: str,
                   params: Params) -> T | None:
    """The settings `begin` makes and one statement, sent together as one simple query: the
    server runs them as one implicit transaction, commits it when both succeed and rolls it
    back when either fails, so the connection is idle again either way. One round trip where
    `begin` takes four (BEGIN, the settings, the statement, COMMIT or ROLLBACK); for a hot
    single statement, such as a hold that a thousand racing patients try at once. The
    parameters are bound by psycopg on the client (its ClientCursor quoting), not by the
    server, and nothing is prepared."""
    request = request_id.get()
    binder = psycopg.AsyncClientCursor(conn)
    text = (binder.mogrify(_ENTER, (level.value, str(tenant) if tenant else "", "", "",
                                    f"{APPLICATION} {request}" if request else APPLICATION))
            + ";\n" + binder.mogrify(query, params))
    await conn.set_autocommit(True)
    try:
        async with conn.cursor(row_factory=class_row(kind)) as cur:
            await cur.execute(text.encode(), prepare=False)
            cur.nextset()  # past the settings' row, which is never read
            return await cur.fetchone()
    finally:
        await conn.set_autocommit(False)


@asynccontextmanager
async def begin(conn: Conn, level: Level, tenant: UUID | None = None,
                staff: UUID | None = None) -> AsyncIterator[Conn]:
    """A transaction on `conn` at `level` for `tenant` and `staff` (all local to it).

    Not in pipeline mode: it saves two round trips (BEGIN and the settings travelling with
    the first query), but on loopback to a server on the same cores its bookkeeping cost
    more than the round trips (bench, 2026-12-07: holds with Stripe stubbed 180 and 182 per
    second without it, 138 and 160 with it, runs alternated)."""
    request = request_id.get()
    async with conn.transaction():
        await conn.execute(_ENTER, (level.value, str(tenant) if tenant else "",
                                    str(staff) if staff else "", "staff" if staff else "",
                                    f"{APPLICATION} {request}" if request else APPLICATION))
        yield conn


async def rows(conn: Conn, kind: type[T], query: str, params: Params = ()) -> list[T]:
    """The query's rows as `kind` (a dataclass whose fields are the query's columns)."""
    async with conn.cursor(row_factory=class_row(kind)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def one(conn: Conn, kind: type[T], query: str, params: Params = ()) -> T | None:
    """The query's first row as `kind`, or None when it returns none."""
    async with conn.cursor(row_factory=class_row(kind)) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()
