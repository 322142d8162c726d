"""Doctors' calendar feeds: `GET /{slug}/feeds/{token}.ics`, an address a doctor adds to
their own calendar app, which fetches it again every so often.

The token in the address is the only key (only its SHA-256 is stored, in doctors.feed_hash);
the admin makes a new one to withdraw the old at once. The feed is read at the service
level for the clinic of the address only, covers some weeks back and months ahead, shows
patients by initials and blocked time as blocked, never a treatment, and is built by the
same `icalendar` code as the patient's calendar file. Its stamp is the latest change among
its entries, so the same calendar gives the same bytes and the same ETag, and a calendar
app asking again with If-None-Match gets 304.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from dentbook import tokens
from dentbook.db import Conn, Level, one, rows
from dentbook.mail.ical import FeedEvent, doctor_feed
from dentbook.refusals import refused_as
from dentbook.tenancy import ClinicDb

WEEKS_BACK = 4
DAYS_AHEAD = 183
REFRESH_MINUTES = 15
# The stamp of a feed with no entries: any fixed instant keeps its bytes stable.
_EMPTY_STAMP = datetime(2024, 1, 1, tzinfo=UTC)

DOCTOR = "select id, name from dentbook.feed_doctor(%s)"
EVENTS = """select id, kind, starts_at, ends_at, patient_name, updated_at
            from dentbook.feed_events(%s, %s, %s)"""
SET_FEED = "select dentbook.admin_set_feed(%s, %s)"


@dataclass(frozen=True)
class FeedDoctor:
    id: UUID
    name: str


@dataclass(frozen=True)
class Entry:
    id: UUID
    kind: str
    starts_at: datetime
    ends_at: datetime
    patient_name: str | None
    updated_at: datetime


@dataclass(frozen=True)
class Feed:
    body: bytes
    etag: str

    def matches(self, if_none_match: str | None) -> bool:
        """Whether a client's If-None-Match names this feed (weak or strong, or '*')."""
        if not if_none_match:
            return False
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or self.etag in tags


async def read(clinic_db: ClinicDb, token: str, now: datetime | None = None) -> Feed | None:
    """The feed behind `token` at this clinic, or None (malformed, unknown, rotated)."""
    digest = tokens.digest(token)
    if digest is None:
        return None
    now = now or datetime.now(UTC)
    async with clinic_db.transaction(Level.SERVICE) as conn:
        found = await one(conn, FeedDoctor, DOCTOR, (digest,))
        if found is None:
            return None
        entries = await rows(conn, Entry, EVENTS, (digest, now - timedelta(weeks=WEEKS_BACK),
                                                   now + timedelta(days=DAYS_AHEAD)))
    clinic = clinic_db.clinic
    events = [FeedEvent(uid=f"{e.id}@dentbook-feed", starts_at=e.starts_at, ends_at=e.ends_at,
                        patient_name=None if e.kind == "block" else (e.patient_name or ""))
              for e in entries]
    stamp = max((e.updated_at for e in entries), default=_EMPTY_STAMP)
    body = doctor_feed(found.name, clinic.name, events, refresh_minutes=REFRESH_MINUTES,
                       locale=clinic.default_locale, stamp=stamp)
    return Feed(body, f'"{hashlib.sha256(body).hexdigest()[:40]}"')


async def rotate(conn: Conn, doctor_id: UUID) -> str:
    """A new feed token for the doctor (the old one answers 404 from now on); shown once."""
    token, digest = tokens.new()
    async with refused_as(conn):
        await conn.execute(SET_FEED, (doctor_id, digest))
    return token


async def turn_off(conn: Conn, doctor_id: UUID) -> None:
    async with refused_as(conn):
        await conn.execute(SET_FEED, (doctor_id, None))
