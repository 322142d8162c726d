"""Calendar files, parsed back with icalendar: iTIP REQUEST/CANCEL for a visit (RFC 5545/5546)
and a doctor's feed; folding of long Polish text; nothing about the treatment."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from icalendar import Calendar

from dentbook.mail.compose import VisitMail
from dentbook.mail.ical import FeedEvent, VisitEvent, doctor_feed, initials, visit_calendar

STAMP = datetime(2026, 11, 30, 12, 0, 5, tzinfo=UTC)
LONG_ADDRESS = ("ul. Świętokrzyska 12/34 lok. 5, wejście od podwórza, domofon „Gabinet”, "
                "00-001 Warszawa — żółta kamienica obok księgarni, źródło gęślą jaźń")


def event(**changes: object) -> VisitEvent:
    base = VisitEvent(
        uid="visit-42@dentbook.test", sequence=3,
        # Given in Warsaw time: the file must carry UTC.
        starts_at=datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        ends_at=datetime(2026, 12, 1, 10, 30, tzinfo=timezone(timedelta(hours=1))),
        clinic_name="Klinika Alfa", clinic_address="ul. Świętokrzyska 12, 00-001 Warszawa",
        clinic_phone="+48 22 123 45 67", clinic_email="kontakt@alfa.test",
        doctor_name="dr Anna Żółkiewska", patient_name="Jan Kowalski",
        patient_email="jan@example.com", visit_url="https://dentbook.test/klinika-alfa/visits/t1",
        locale="pl")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def only_event(data: bytes):
    cal = Calendar.from_ical(data)
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    return cal, events[0]


def test_request_carries_what_rfc_5546_asks_for():
    cal, ev = only_event(visit_calendar(event(), "REQUEST", stamp=STAMP))
    assert str(cal["VERSION"]) == "2.0"
    assert "dentbook" in str(cal["PRODID"])
    assert str(cal["METHOD"]) == "REQUEST"
    assert str(ev["UID"]) == "visit-42@dentbook.test"
    assert int(ev["SEQUENCE"]) == 3
    assert ev.decoded("DTSTAMP") == STAMP
    assert ev.decoded("DTSTART") == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert ev.decoded("DTEND") == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    data = visit_calendar(event(), "REQUEST", stamp=STAMP)
    assert b"DTSTART:20261201T090000Z\r\n" in data and b"DTEND:20261201T093000Z\r\n" in data
    assert b"DTSTAMP:20261130T120005Z\r\n" in data
    assert str(ev["STATUS"]) == "CONFIRMED"
    assert str(ev["SUMMARY"]) == "Wizyta u dentysty — Klinika Alfa"
    assert str(ev["LOCATION"]) == "ul. Świętokrzyska 12, 00-001 Warszawa"
    description = str(ev["DESCRIPTION"])
    assert "dr Anna Żółkiewska" in description and "+48 22 123 45 67" in description
    assert "https://dentbook.test/klinika-alfa/visits/t1" in description
    organizer = ev["ORGANIZER"]
    assert str(organizer) == "mailto:kontakt@alfa.test"
    assert organizer.params["CN"] == "Klinika Alfa"
    attendee = ev["ATTENDEE"]
    assert str(attendee) == "mailto:jan@example.com"
    assert attendee.params["CN"] == "Jan Kowalski"
    assert attendee.params["RSVP"] == "FALSE"
    assert str(ev["CLASS"]) == "PRIVATE"


def test_cancel_withdraws_the_same_entry():
    request = visit_calendar(event(sequence=0), "REQUEST", stamp=STAMP)
    cancel = visit_calendar(event(sequence=1), "CANCEL", stamp=STAMP + timedelta(hours=1))
    _, before = only_event(request)
    cal, after = only_event(cancel)
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(after["STATUS"]) == "CANCELLED"
    assert str(after["UID"]) == str(before["UID"])
    assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])
    assert after.decoded("DTSTAMP") > before.decoded("DTSTAMP")
    assert str(after["ATTENDEE"]) == "mailto:jan@example.com"
    assert str(after["ORGANIZER"]) == "mailto:kontakt@alfa.test"


def test_publish_for_a_download_names_no_attendee():
    cal, ev = only_event(visit_calendar(event(), "PUBLISH", stamp=STAMP))
    assert str(cal["METHOD"]) == "PUBLISH"
    assert "ATTENDEE" not in ev
    assert str(ev["ORGANIZER"]) == "mailto:kontakt@alfa.test"
    assert (str(ev["UID"]), int(ev["SEQUENCE"])) == ("visit-42@dentbook.test", 3)


def test_english_summary_and_description():
    _, ev = only_event(visit_calendar(event(locale="en"), "REQUEST", stamp=STAMP))
    assert str(ev["SUMMARY"]) == "Dental visit — Klinika Alfa"
    assert "Doctor: dr Anna Żółkiewska" in str(ev["DESCRIPTION"])
    _, pl = only_event(visit_calendar(event(), "REQUEST", stamp=STAMP))
    assert "Lekarz: dr Anna Żółkiewska" in str(pl["DESCRIPTION"])


def test_a_clinic_without_address_phone_or_email_leaves_those_fields_out():
    raw = visit_calendar(event(clinic_address="", clinic_phone="", clinic_email=""), "REQUEST",
                         stamp=STAMP)
    assert b"mailto:\r\n" not in raw and b"mailto:;" not in raw
    _, ev = only_event(raw)
    assert "ORGANIZER" not in ev and "LOCATION" not in ev
    assert "Telefon" not in str(ev["DESCRIPTION"]) and "dr Anna" in str(ev["DESCRIPTION"])


def test_dtstamp_defaults_to_now_in_utc():
    before = datetime.now(UTC).replace(microsecond=0)
    _, ev = only_event(visit_calendar(event(), "REQUEST"))
    assert ev.decoded("DTSTAMP").utcoffset() == timedelta(0)
    assert ev.decoded("DTSTAMP") >= before


def test_long_polish_lines_fold_at_75_octets_without_splitting_characters():
    data = visit_calendar(event(clinic_address=LONG_ADDRESS, doctor_name="dr " + "Żółć " * 30),
                          "REQUEST", stamp=STAMP)
    lines = data.split(b"\r\n")
    assert lines[-1] == b""  # every line ends in CRLF
    assert any(line.startswith(b" ") for line in lines)  # something was folded
    for line in lines:
        assert len(line) <= 75, line
        line.decode("utf-8")  # a continuation never starts or ends mid-character
    assert not any(b"\n" in line or b"\r" in line for line in lines)
    _, ev = only_event(data)
    assert str(ev["LOCATION"]) == LONG_ADDRESS


def test_hostile_names_stay_inside_their_fields():
    hostile = 'Jan "X" Kowalski\r\nATTENDEE:mailto:evil@example.com\r\nEND:VEVENT'
    data = visit_calendar(event(patient_name=hostile, clinic_name="Alfa\nMETHOD:PUBLISH"),
                          "REQUEST", stamp=STAMP)
    cal, ev = only_event(data)
    assert str(cal["METHOD"]) == "REQUEST"
    assert str(ev["ATTENDEE"]) == "mailto:jan@example.com"
    lines = data.replace(b"\r\n ", b"").split(b"\r\n")
    assert sum(line.startswith(b"ATTENDEE") for line in lines) == 1
    assert lines.count(b"END:VEVENT") == 1
    assert [line for line in lines if line.startswith(b"METHOD")] == [b"METHOD:REQUEST"]
    assert ev["ATTENDEE"].params["CN"] == " ".join(hostile.split())
    assert str(ev["SUMMARY"]) == "Wizyta u dentysty — Alfa METHOD:PUBLISH"


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        visit_calendar(event(starts_at=datetime(2026, 12, 1, 9)), "REQUEST")
    with pytest.raises(ValueError, match="REQUEST, CANCEL or PUBLISH"):
        visit_calendar(event(), "REPLY")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        visit_calendar(event(patient_email="jan@example.com\r\nX:1"), "REQUEST")


def test_no_field_could_carry_the_treatment():
    for cls in (VisitEvent, FeedEvent, VisitMail):
        names = [f.name for f in dataclasses.fields(cls)]
        assert not [n for n in names if any(w in n for w in ("treat", "visit_type", "service"))], names


# --- the doctor's feed ----------------------------------------------------------------------

def feed_events() -> list[FeedEvent]:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    return [FeedEvent("booking-1@dentbook.test", at, at + timedelta(minutes=30), "Jan Kowalski"),
            FeedEvent("booking-2@dentbook.test", at + timedelta(hours=1),
                      at + timedelta(hours=2), "Anna Maria Nowak-Wiśniewska"),
            FeedEvent("block-7@dentbook.test", at + timedelta(hours=3), at + timedelta(hours=4),
                      None),
            FeedEvent("booking-3@dentbook.test", at + timedelta(hours=5),
                      at + timedelta(hours=6), "  ")]


def test_feed_is_a_subscription_with_initials_and_blocks():
    data = doctor_feed("dr Anna Żółkiewska", "Klinika Alfa", feed_events(), stamp=STAMP)
    cal = Calendar.from_ical(data)
    assert "METHOD" not in cal
    unfolded = data.replace(b"\r\n ", b"")
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT15M\r\n" in unfolded
    assert b"X-PUBLISHED-TTL:PT15M\r\n" in unfolded
    assert str(cal["NAME"]) == str(cal["X-WR-CALNAME"]) == "dr Anna Żółkiewska — Klinika Alfa"
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {"booking-1@dentbook.test", "booking-2@dentbook.test",
                           "block-7@dentbook.test", "booking-3@dentbook.test"}
    assert str(events["booking-1@dentbook.test"]["SUMMARY"]) == "J. K."
    assert str(events["booking-2@dentbook.test"]["SUMMARY"]) == "A. N."
    assert str(events["block-7@dentbook.test"]["SUMMARY"]) == "Zablokowane"
    assert str(events["booking-3@dentbook.test"]["SUMMARY"]) == "Wizyta"
    for name in (b"Kowalski", b"Jan ", "Wiśniewska".encode(), b"Maria", b"@example"):
        assert name not in unfolded
    assert b"DTSTART:20261201T090000Z\r\n" in unfolded
    assert all(e.decoded("DTSTART").utcoffset() == timedelta(0) for e in events.values())
    again = Calendar.from_ical(doctor_feed("dr Anna Żółkiewska", "Klinika Alfa", feed_events()))
    assert {str(e["UID"]) for e in again.walk("VEVENT")} == set(events)


def test_feed_in_english_with_another_refresh():
    data = doctor_feed("dr A", "Klinika Alfa", feed_events(), refresh_minutes=60, locale="en")
    unfolded = data.replace(b"\r\n ", b"")
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in unfolded
    assert b"X-PUBLISHED-TTL:PT1H\r\n" in unfolded
    summaries = [str(e["SUMMARY"]) for e in Calendar.from_ical(data).walk("VEVENT")]
    assert summaries == ["J. K.", "A. N.", "Blocked", "Visit"]


@pytest.mark.parametrize(("name", "expected"), [
    ("Jan Kowalski", "J. K."), ("jan kowalski", "J. K."), ("Madonna", "M."),
    ("Łucja Żak-Ślęzak", "Ł. Ż."), ("  Anna   Maria  Nowak ", "A. N."), ("", ""),
    ("123 456", ""), ("(Jan) Kowalski", "J. K."), ("Jan\r\nKowalski", "J. K."),
])
def test_initials(name, expected):
    assert initials(name) == expected
