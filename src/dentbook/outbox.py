"""Sending the outbox: the job runner's handler for e-mail jobs.

A message row (written in the transaction of the change that caused it) is rendered when it
is sent, from the visit as it is then, in the patient's language, with the patient's own
link and, where the calendar entry changes, the `.ics` (same UID for the life of the visit,
SEQUENCE from the change). The Message-ID is fixed per row, so a retry after a crash is
recognisably the same message. SMTP failures that may pass (the server is down, 4xx) are
retried by the runner with back-off; a refused address is given up at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast
from uuid import UUID

from dentbook import visits
from dentbook.db import Database, Level, one
from dentbook.jobs import GiveUp, Job
from dentbook.mail import compose
from dentbook.mail.smtp import MailError, SmtpConfig, parse_smtp_url, send
from dentbook.settings import Settings

log = logging.getLogger(__name__)

# (clinic slug, link token) -> (the clinic's booking page, the patient's visit page), absolute.
Links = Callable[[str, str], tuple[str, str]]

MESSAGE = "select * from dentbook.message_to_send(%s)"
DETAILS = "select * from dentbook.visit_details(%s)"
SENT = "select dentbook.message_sent(%s, %s, %s)"
DROPPED = "select dentbook.message_dropped(%s)"
# Why a refund was made (dentbook.refunds.reason, or a cancellation) as the e-mail words it.
REFUND_REASONS: dict[str, Literal["cancelled", "lapsed", "mismatch"]] = {
    "cancelled": "cancelled", "paid_after_expiry": "lapsed", "amount_mismatch": "mismatch"}
BACKLOG = "select depth, oldest_seconds from dentbook.outbox_backlog()"


@dataclass(frozen=True)
class Pending:
    booking_id: UUID
    kind: str
    to_address: str | None
    locale: str
    sequence: int
    state: str


@dataclass(frozen=True)
class Details:
    id: UUID
    slug: str
    reference: str | None
    clinic_name: str
    clinic_address: str
    clinic_phone: str
    clinic_email: str
    time_zone: str
    doctor_name: str
    starts_at: datetime
    ends_at: datetime
    status: str
    deposit_minor: int
    refund_minor: int
    refund_reason: str | None
    currency: str
    patient_name: str | None
    patient_email: str | None
    locale: str
    cancel_window_hours: int
    late_refund_percent: int
    sequence: int
    cancelled_by: str | None


class Outbox:
    """Sends one e-mail job's message; `Runner` calls `send_job` for jobs of kind 'email'."""

    def __init__(self, db: Database, settings: Settings, links: Links) -> None:
        self.db, self.settings, self.links = db, settings, links
        self.smtp: SmtpConfig | None = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        self.domain = settings.mail_from.rsplit("@", 1)[1]

    async def send_job(self, job: Job) -> None:
        if job.ref is None or job.booking_id is None:
            raise GiveUp("an e-mail job without its message")
        async with self.db.transaction(Level.SERVICE, job.tenant_id) as conn:
            pending = await one(conn, Pending, MESSAGE, (job.ref,))
            if pending is None or pending.state != "due":
                return  # sent already (a job claimed again), or cancelled since
            details = await one(conn, Details, DETAILS, (pending.booking_id,))
            if details is None or not pending.to_address or not details.patient_name:
                # The patient was erased (or anonymised) meanwhile: nobody to write to.
                await conn.execute(DROPPED, (job.ref,))
                return
            if pending.kind == "reminder" and details.starts_at <= datetime.now(UTC):
                # Held up (an SMTP outage) until the visit began: a reminder no longer helps.
                await conn.execute(DROPPED, (job.ref,))
                return
            link = await visits.ensure_link(conn, self.settings.secret_key, pending.booking_id)
        if self.smtp is None:
            raise MailError("no SMTP_URL configured", transient=True)
        mail = self._mail(pending, details, link)
        message_id = compose.message_id(job.ref, self.domain, self.settings.secret_key)
        try:
            message = compose.compose(cast(compose.MailKind, pending.kind), mail,
                                      sender=self.settings.mail_from, message_id=message_id)
            await send(self.smtp, message, self.settings.mail_from, [pending.to_address])
        except MailError as exc:
            if exc.transient:
                raise
            raise GiveUp(str(exc)) from exc
        except ValueError as exc:  # an address that is not one mailbox, and so on
            raise GiveUp(str(exc)) from exc
        async with self.db.transaction(Level.SERVICE, job.tenant_id) as conn:
            await conn.execute(SENT, (job.ref, str(message["Subject"]), message_id))
        log.info("e-mail sent", extra={"outbox_message": job.ref, "kind": pending.kind})

    def _mail(self, pending: Pending, d: Details, link: str) -> compose.VisitMail:
        clinic_url, visit_url = self.links(d.slug, link)
        return compose.VisitMail(
            booking_id=d.id, reference=d.reference or "", clinic_name=d.clinic_name,
            clinic_address=d.clinic_address, clinic_phone=d.clinic_phone,
            clinic_email=d.clinic_email, clinic_url=clinic_url, time_zone=d.time_zone,
            doctor_name=d.doctor_name, starts_at=d.starts_at, ends_at=d.ends_at,
            deposit_minor=d.deposit_minor, refund_minor=d.refund_minor, currency=d.currency,
            patient_name=d.patient_name or "", patient_email=pending.to_address or "",
            locale=pending.locale,
            visit_url=visit_url if d.status == "confirmed" else None,
            policy_window_hours=d.cancel_window_hours, late_refund_percent=d.late_refund_percent,
            calendar_uid=visits.calendar_uid(d.id, self.domain), sequence=pending.sequence,
            cancelled_by="clinic" if d.cancelled_by == "clinic" else "patient",
            refund_reason=REFUND_REASONS.get(d.refund_reason or "", "lapsed"))


async def backlog(db: Database) -> tuple[int, float | None]:
    """E-mails due and not sent, and the oldest one's wait in seconds (None when none)."""
    async with db.transaction(Level.WORKER) as conn:
        row = await (await conn.execute(BACKLOG)).fetchone()
    if row is None:
        return 0, None
    depth, oldest = row
    return (depth if isinstance(depth, int) else 0,
            oldest if isinstance(oldest, float) else None)
