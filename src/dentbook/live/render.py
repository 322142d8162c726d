"""The SSE messages each kind of topic gets: calendar cells, a dashboard's table body, a
booking's outcome. Each is read and rendered once per topic and change; the same bytes go to
every client of the topic. Events carry no personal data except on the staff stream, which
is read at the staff level of its own clinic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from jinja2 import Environment

from dentbook import agenda, visits
from dentbook.db import Database, Level
from dentbook.errors import NotFound
from dentbook.live.changes import sse
from dentbook.live.grids import Grids
from dentbook.live.topics import BookingTopic, CalendarTopic, StaffTopic
from dentbook.settings import Settings
from dentbook.tenancy import Clinic, Clinics
from dentbook.web.render import render_fragment


@dataclass(frozen=True)
class Cells:
    """A calendar message, and the pending holds it shows (start, end, expiry): each frees
    its time at its expiry, which the hub announces itself."""

    message: bytes | None
    holds: tuple[tuple[datetime, datetime, datetime], ...]


class Renderer:
    def __init__(self, db: Database, clinics: Clinics, grids: Grids, settings: Settings,
                 env: Environment, next_id: Callable[[], str]) -> None:
        self.db, self.clinics, self.grids, self.settings, self.env = db, clinics, grids, settings, env
        self.next_id = next_id

    async def calendar(self, topic: CalendarTopic,
                       around: tuple[datetime, datetime] | None = None) -> Cells:
        """The topic's slot cells (those overlapping `around`, or all), as one message, from
        the same grid the pages show."""
        clinic = await self.clinics.get(topic.slug)
        cal = (await self.grids.get(clinic, topic.doctor, topic.visit, topic.monday,
                                    topic.locale)).calendar
        if cal.week is None:
            return Cells(None, ())
        slots = [s for d in cal.week.days for s in d.slots
                 if around is None or (s.start < around[1] and around[0] < s.end)]
        if not slots and around is not None:
            return Cells(None, cal.week.holds)
        html = render_fragment(self.env, "fragments/slot_updates.html", topic.locale, cal=cal,
                               clinic=clinic, slots=slots, mode=topic.mode)
        return Cells(sse(self.next_id(), html), cal.week.holds)

    async def week_of(self, clinic: Clinic, doctor: UUID, visit: UUID | None, week: date | None,
                      locale: str) -> tuple[UUID, date]:
        """The visit type and Monday a calendar stream asks for, as the page shows them
        (NotFound for a doctor or visit type that is not the clinic's)."""
        cal = (await self.grids.get(clinic, doctor, visit, week, locale)).calendar
        if cal.visit is None or cal.week is None:
            raise NotFound("visit")
        return cal.visit.id, cal.week.monday

    async def appointments(self, topic: StaffTopic) -> bytes:
        """The dashboard's table body, read as staff under row level security."""
        clinic = await self.clinics.get(topic.slug)
        async with self.db.transaction(Level.STAFF, topic.tenant) as conn:
            page = await agenda.appointments(conn, clinic.zone, topic.filters)
        html = render_fragment(self.env, "fragments/appointments_body.html", topic.locale,
                               clinic=clinic, page_=page, oob=True)
        return sse(self.next_id(), html)

    async def outcome(self, topic: BookingTopic) -> bytes:
        """The booking's outcome box; once confirmed it carries the patient's link, so it is
        read at the service level (the link's row is made then)."""
        clinic = await self.clinics.get(topic.slug)
        async with self.db.transaction(Level.SERVICE, topic.tenant) as conn:
            view, token = await visits.outcome(conn, self.settings.secret_key, topic.booking)
        html = render_fragment(self.env, "fragments/booking_outcome.html", topic.locale,
                               clinic=clinic, booking=view, oob=True, visit_token=token)
        return sse(self.next_id(), html)
