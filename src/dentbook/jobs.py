"""Jobs: work to do after a commit, at a time, exactly once across processes.

A job row is written in the transaction that causes it (`sql/schema-3.sql: jobs`), so a
rolled-back change leaves none and a committed one is never forgotten. Every server
process runs one `Runner` in its lifespan: it claims due jobs with FOR UPDATE SKIP LOCKED
for a lease (`sql/worker.sql`), runs each kind's handler, and marks it done, or due again
after an exponential back-off, or failed for good after its attempts (the last error is
kept). It sleeps until the next due time or until a NOTIFY on `dentbook_jobs` says a job
was written: no polling loop, no cron, no separate worker process.

A handler must be idempotent: a process that dies after the effect but before marking the
job done leaves it to be claimed again when the lease runs out.

At start a runner first runs its `prepare` statements at the worker level (e.g. making sure
every clinic has its retention job), retrying them like everything else until they succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from dentbook.db import Database, DatabaseUnavailable, Level, rows

log = logging.getLogger(__name__)

CHANNEL = "dentbook_jobs"
CLAIM = "select * from dentbook.claim_jobs(%s, %s, %s)"
FINISH = "select dentbook.finish_job(%s, %s, %s)"
RETRY = "select dentbook.retry_job(%s, %s, %s, %s, %s, %s, %s)"
NEXT = "select dentbook.next_job_at()"


@dataclass(frozen=True)
class Job:
    tenant_id: UUID
    id: int
    kind: str
    booking_id: UUID | None
    ref: int | None  # what the job is about beyond its booking (an e-mail: its message)
    attempts: int


class GiveUp(Exception):
    """The job can never succeed (e.g. Stripe refuses the refund for good): stop retrying."""


Handler = Callable[[Job], Awaitable[None]]


class Runner:
    """This process's job runner."""

    def __init__(self, db: Database, handlers: Mapping[str, Handler], *,
                 lease: timedelta = timedelta(minutes=5), batch: int = 20,
                 backoff: timedelta = timedelta(seconds=30),
                 max_backoff: timedelta = timedelta(hours=6), attempts: int = 10,
                 longest_sleep: float = 900.0, prepare: Sequence[str] = ()) -> None:
        self.db, self.handlers = db, dict(handlers)
        self.prepare = tuple(prepare)
        self.lease, self.batch = lease, batch
        self.backoff, self.max_backoff, self.attempts = backoff, max_backoff, attempts
        # A missed NOTIFY (listener down) costs at most this long a delay.
        self.longest_sleep = longest_sleep
        self.claim = uuid.uuid4()  # this process's claims
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self, _payload: str = "") -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dentbook-jobs")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        prepared = False
        while True:
            try:
                if not prepared:
                    await self.run_prepare()
                    prepared = True
                ran = await self.run_due()
                pause = 0.0 if ran >= self.batch else await self._until_next()
            except DatabaseUnavailable as exc:
                log.warning("jobs: database unavailable (%s); retrying", exc)
                pause = 5.0
            except Exception:
                log.exception("jobs: runner failed; retrying")
                pause = 5.0
            if pause > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)

    async def run_prepare(self) -> None:
        """Run the `prepare` statements, in one transaction at the worker level."""
        if not self.prepare:
            return
        async with self.db.transaction(Level.WORKER) as conn:
            for statement in self.prepare:
                await conn.execute(statement.encode())

    async def run_due(self) -> int:
        """Claim and run the jobs due now (one batch); returns how many were claimed."""
        async with self.db.transaction(Level.WORKER) as conn:
            jobs = await rows(conn, Job, CLAIM, (self.claim, self.batch, self.lease))
        for job in jobs:
            await self._run_one(job)
        return len(jobs)

    async def _until_next(self) -> float:
        async with self.db.transaction(Level.WORKER) as conn:
            row = await (await conn.execute(NEXT)).fetchone()
        due = row[0] if row else None
        if not isinstance(due, datetime):
            return self.longest_sleep
        return min(max(0.05, (due - datetime.now(UTC)).total_seconds()), self.longest_sleep)

    async def _run_one(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise GiveUp(f"no handler for {job.kind!r} in this version")
            await handler(job)
        except Exception as exc:
            await self._failed(job, exc)
            return
        async with self.db.transaction(Level.WORKER) as conn:
            await conn.execute(FINISH, (job.tenant_id, job.id, self.claim))
        log.info("job done", extra={"job": job.id, "kind": job.kind, "attempt": job.attempts})

    async def _failed(self, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        delay = min(self.backoff * 2 ** (job.attempts - 1), self.max_backoff)
        # For the job's clinic: a job given up is written to that clinic's audit log.
        async with self.db.transaction(Level.WORKER, job.tenant_id) as conn:
            row = await (await conn.execute(RETRY, (job.tenant_id, job.id, self.claim, error, delay,
                                                    isinstance(exc, GiveUp), self.attempts))).fetchone()
        state = row[0] if row else None
        log.warning("job %s (%s) failed, now %s: %s", job.id, job.kind, state, error,
                    extra={"job": job.id, "kind": job.kind, "attempt": job.attempts})
