"""What live streams watch. Each topic says which changes reach it (its index `keys`)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from dentbook.agenda import Filters
from dentbook.live.fanout import booking_key, clinic_key, doctor_key


@dataclass(frozen=True)
class CalendarTopic:
    """One week of one doctor's slots for one visit type, in one language."""

    slug: str
    tenant: UUID
    doctor: UUID
    visit: UUID
    monday: date
    locale: str
    mode: str = "book"  # "book": cells link to the booking form; "move": reschedule buttons

    @property
    def keys(self) -> tuple[Hashable, ...]:
        return (doctor_key(self.tenant, self.doctor),)


@dataclass(frozen=True)
class StaffTopic:
    """A clinic's agenda with its filters; the rows are rendered at staff level."""

    slug: str
    tenant: UUID
    filters: Filters
    locale: str

    @property
    def keys(self) -> tuple[Hashable, ...]:
        return (clinic_key(self.tenant),)


@dataclass(frozen=True)
class BookingTopic:
    """One booking's outcome, for its payment return page."""

    slug: str
    tenant: UUID
    booking: UUID
    locale: str

    @property
    def keys(self) -> tuple[Hashable, ...]:
        return (booking_key(self.booking),)
