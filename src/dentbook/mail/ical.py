"""Calendar files (RFC 5545) with `icalendar`: a patient's visit as an iTIP message
(RFC 5546 REQUEST or CANCEL) and a doctor's subscription feed.

Times are in UTC, so no VTIMEZONE is needed. Neither names the treatment: a calendar is
often shared, and the kind of dental work is health data. The feed shows patients by
initials only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from icalendar import CLASS, STATUS, TRANSP, Calendar, Event, vCalAddress, vDuration

from dentbook.mail.wording import one_line, translator

PRODID = "-//dentbook//dentbook visits//EN"


@dataclass(frozen=True)
class VisitEvent:
    uid: str  # the same for the life of the visit
    sequence: int  # rises with each change the patient is told about
    starts_at: datetime
    ends_at: datetime
    clinic_name: str
    clinic_address: str
    clinic_phone: str
    clinic_email: str
    doctor_name: str
    patient_name: str
    patient_email: str
    visit_url: str | None
    locale: str


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    starts_at: datetime
    ends_at: datetime
    patient_name: str | None  # None: the doctor's time is blocked, no visit


def visit_calendar(event: VisitEvent, method: Literal["REQUEST", "CANCEL", "PUBLISH"],
                   stamp: datetime | None = None) -> bytes:
    """One VEVENT for the patient's calendar: REQUEST (new or changed) and CANCEL (withdraws
    the entry with the same UID) go by e-mail; PUBLISH, which names no attendee, suits a
    file downloaded from the visit page."""
    if method not in ("REQUEST", "CANCEL", "PUBLISH"):
        raise ValueError(f"method must be REQUEST, CANCEL or PUBLISH, not {method!r}")
    _ = translator(event.locale)
    clinic = one_line(event.clinic_name)
    description = [_("Doctor: %(doctor)s", doctor=one_line(event.doctor_name))]
    if event.clinic_phone:
        description.append(_("Clinic phone: %(phone)s", phone=one_line(event.clinic_phone)))
    if event.visit_url:
        description.append(_("Your visit, to cancel or reschedule: %(url)s", url=event.visit_url))
    vevent = Event.new(
        uid=event.uid, sequence=event.sequence, stamp=_utc(stamp or datetime.now(UTC)),
        start=_utc(event.starts_at), end=_utc(event.ends_at),
        summary=_("Dental visit — %(clinic)s", clinic=clinic),
        location=one_line(event.clinic_address) or None, description="\n".join(description),
        url=event.visit_url or None,
        # A clinic that has not given its address yet is named by no `mailto:` at all.
        organizer=vCalAddress.new(event.clinic_email, cn=clinic) if event.clinic_email else None,
        attendees=[] if method == "PUBLISH" else [
            vCalAddress.new(event.patient_email, cn=one_line(event.patient_name),
                            cutype="INDIVIDUAL", role="REQ-PARTICIPANT", partstat="ACCEPTED",
                            rsvp=False)],
        status=STATUS.CANCELLED if method == "CANCEL" else STATUS.CONFIRMED,
        classification=CLASS.PRIVATE, transparency=TRANSP.OPAQUE)
    cal = _calendar()
    cal.add("method", method)
    cal.add_component(vevent)
    return bytes(cal.to_ical())


def doctor_feed(doctor_name: str, clinic_name: str, events: Sequence[FeedEvent],
                refresh_minutes: int = 15, locale: str = "pl",
                stamp: datetime | None = None) -> bytes:
    """A subscription feed (no METHOD): the doctor's visits and blocked time."""
    _ = translator(locale)
    name = f"{one_line(doctor_name)} — {one_line(clinic_name)}"
    refresh = timedelta(minutes=refresh_minutes)
    cal = _calendar()
    cal.add("name", name)
    cal.add("x-wr-calname", name)
    cal.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(refresh))
    now = _utc(stamp or datetime.now(UTC))
    for item in events:
        if item.patient_name is None:
            summary = _("Blocked")
        else:
            summary = initials(item.patient_name) or _("Visit")
        cal.add_component(Event.new(
            uid=item.uid, stamp=now, start=_utc(item.starts_at), end=_utc(item.ends_at),
            summary=summary, status=STATUS.CONFIRMED, classification=CLASS.PRIVATE,
            transparency=TRANSP.OPAQUE))
    return bytes(cal.to_ical())


def initials(name: str) -> str:
    """"Jan Kowalski" -> "J. K.": the first letters of the first and last names only."""
    words = [w for w in name.split() if any(c.isalpha() for c in w)]
    chosen = words[:1] + words[1:][-1:]
    return " ".join(next(c for c in w if c.isalpha()).upper() + "." for w in chosen)


def _calendar() -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    return cal


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("calendar times must be timezone-aware")
    return instant.astimezone(UTC)
