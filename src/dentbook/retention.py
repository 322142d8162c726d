"""Retention: each clinic's nightly run that erases what it no longer may keep.

One job of kind 'retention' per clinic, run by the job runner (`dentbook.jobs`), so exactly
one process runs it, with no cron: `sql/service-privacy.sql: run_retention` erases the
personal data of unpaid holds some days after they lapsed and anonymises visits some years
after they took place (both per the clinic's settings), deletes failed staff sign-ins once
throttling no longer needs them, writes an audit row with the counts, and schedules the next
run. A clinic gets its job when it is created (`admin.add_clinic`),
and every runner makes sure at start that each clinic has one (`ENSURE`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from dentbook.db import Database, Level
from dentbook.jobs import Job
from dentbook.settings import Settings

log = logging.getLogger(__name__)

KIND = "retention"
RUN = "select dentbook.run_retention(%s, %s)"
# Worker level: every clinic has a retention job due (one is made where none is).
ENSURE = "select dentbook.ensure_retention_jobs()"
# As the owner, inside a clinic being created.
SCHEDULE = "select dentbook.schedule_retention()"


async def run_job(db: Database, settings: Settings, job: Job) -> None:
    """The job handler: one run for the job's clinic, in one transaction. Failed sign-ins
    are kept only as long as the throttling window needs them."""
    window = timedelta(minutes=settings.staff_login_window_minutes)
    async with db.transaction(Level.SERVICE, job.tenant_id) as conn:
        row = await (await conn.execute(RUN, (job.id, window))).fetchone()
    log.info("retention run", extra={"tenant": str(job.tenant_id), "result": row[0] if row else None})
