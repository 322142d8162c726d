"""Doctors as the admin keeps them, over real HTTP: adding and renaming, the active flag,
weekly hours with several ranges a day (each day's errors shown beside it, in the page's
language), days off and holidays; and no visit silently orphaned — every future visit the
new hours, days off or the active flag no longer allow is listed with a link to the agenda,
and stays exactly where it was."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from admin_helpers import WARSAW, add_visit, field_errors, snapshot, staff_session
from helpers import free_starts, owner_sql

OUTSIDE = re.compile(r'data-outside-visit="([^"]+)"')


def _monday_in(weeks: int) -> date:
    today = datetime.now(WARSAW).date()
    return today - timedelta(days=today.weekday()) + timedelta(weeks=weeks)


def _bookings(pg, clinic) -> list[tuple]:
    return owner_sql(pg.owner, clinic.id, "select id, during, status, amount_minor"
                     " from dentbook.bookings order by id")


def test_adding_and_renaming_a_doctor_and_the_active_flag(server, pg, clinic, client):
    with staff_session(server, pg, clinic, "admin") as admin:
        r = admin.post("/doctors", {"doctor_name": "  dr  Ewa   Zięba "})
        assert r.status_code == 303
        new = UUID(urlsplit(r.headers["location"]).path.rsplit("/", 1)[1])
        page = admin.client.get(r.headers["location"])
        assert page.status_code == 200 and "dr Ewa Zięba" in page.text and 'data-saved' in page.text
        dup = admin.post("/doctors", {"doctor_name": "dr Ewa Zięba"})
        assert dup.status_code == 422 and field_errors(dup.text) == {"doctor_name"}
        assert str(new) in client.get(f"/{clinic.slug}").text  # on the public page at once
        off = admin.post(f"/doctors/{new}", {"doctor_name": "dr Ewa Zięba-Nowak"})
        assert off.status_code == 303
        assert owner_sql(pg.owner, clinic.id, "select name, active from dentbook.doctors"
                         " where id = %s", (new,)) == [("dr Ewa Zięba-Nowak", False)]
        assert str(new) not in client.get(f"/{clinic.slug}").text
        empty = admin.post(f"/doctors/{new}", {"doctor_name": "", "active": "on"})
        assert empty.status_code == 422 and field_errors(empty.text) == {"doctor_name"}
        assert 'checked' in empty.text.split('name="active"')[1][:40]  # as it was sent
        assert admin.post(f"/doctors/{new}", {"doctor_name": "dr E", "active": "on"}).status_code == 303
        assert str(new) in client.get(f"/{clinic.slug}").text


def test_hours_errors_are_shown_beside_each_day_and_change_nothing(server, pg, clinic):
    with staff_session(server, pg, clinic, "admin") as admin:
        before = snapshot(pg, clinic)
        doctor = clinic.doctors[0]
        sent = {"hours_1": "9-17", "hours_2": "12:00-09:00", "hours_3": "08:00-12:00, 11:00-14:00",
                "hours_4": "25:00-26:00", "hours_5": "08:00-12:00,13:00-17:00", "hours_6": ""}
        r = admin.post(f"/doctors/{doctor}/hours", sent)
        assert r.status_code == 422
        assert field_errors(r.text) == {"hours_1", "hours_2", "hours_3", "hours_4"}
        for field, code in (("hours_1", "invalid_hours"), ("hours_2", "hours_order"),
                            ("hours_3", "hours_overlap"), ("hours_4", "invalid_hours")):
            assert re.search(rf'id="e-{field}" data-field-error="{field}">[^<]+<', r.text), field
        # The clinic's language (Polish) unless the page is asked for in English.
        assert "Każdy przedział musi kończyć się później, niż się zaczyna." in r.text
        assert "Przedziały nakładają się." in r.text
        assert 'value="08:00-12:00, 11:00-14:00"' in r.text  # as typed
        en = admin.client.post(f"/{clinic.slug}/staff/settings/doctors/{doctor}/hours",
                               params={"lang": "en"}, data={**sent, "_csrf_token": admin.token()})
        assert en.status_code == 422 and "These ranges overlap." in en.text
        assert "Each range must end after it starts." in en.text
        assert snapshot(pg, clinic) == before


def test_new_hours_are_what_patients_can_book(server, pg, clinic, client):
    doctor = clinic.doctors[0]
    monday = _monday_in(2)
    with staff_session(server, pg, clinic, "admin") as admin:
        r = admin.post(f"/doctors/{doctor}/hours",
                       {"hours_1": "10:00-11:00, 15:00 - 15:30", "hours_6": "9:00–9:30"})
        assert r.status_code == 303
        page = admin.client.get(r.headers["location"])
        assert 'value="10:00-11:00, 15:00-15:30"' in page.text and 'value="09:00-09:30"' in page.text
    stored = owner_sql(pg.owner, clinic.id, "select weekday, start_time, end_time from"
                       " dentbook.working_hours where doctor_id = %s order by 1, 2", (doctor,))
    assert stored == [(1, time(10), time(11)), (1, time(15), time(15, 30)), (6, time(9), time(9, 30))]
    starts = free_starts(client, clinic.slug, doctor, clinic.visits["short"], monday.isoformat())
    local = sorted(datetime.fromisoformat(s).astimezone(WARSAW).strftime("%a %H:%M") for s in starts)
    assert local == ["Mon 10:00", "Mon 10:30", "Mon 15:00", "Sat 09:00"]


def test_changing_hours_lists_the_visits_left_outside_and_moves_none(server, pg, clinic):
    doctor = clinic.doctors[0]
    tuesday = _monday_in(2) + timedelta(days=1)
    early = add_visit(pg, clinic, tuesday, time(9))            # outside the new hours
    fits = add_visit(pg, clinic, tuesday, time(13))            # inside
    straddles = add_visit(pg, clinic, tuesday, time(11, 45))   # starts before, ends after 12:00
    released = add_visit(pg, clinic, tuesday, time(10), status="released")  # not active
    past = add_visit(pg, clinic, _monday_in(-1) + timedelta(days=1), time(9))  # over already
    before = _bookings(pg, clinic)
    with staff_session(server, pg, clinic, "admin") as admin:
        week = {f"hours_{d}": "12:00-17:00" for d in range(1, 6)}
        r = admin.post(f"/doctors/{doctor}/hours", week)
        assert r.status_code == 303 and r.headers["location"].endswith("#outside")
        page = admin.client.get(r.headers["location"])
        listed = OUTSIDE.findall(page.text)
        assert listed == [str(early), str(straddles)]
        assert 'data-outside="2"' in page.text and 'role="alert"' in page.text
        assert f'data-outside-visit="{early}" data-reason="hours"' in page.text
        assert str(fits) not in listed and str(released) not in listed and str(past) not in listed
        link = re.search(rf'data-outside-visit="{early}".*?href="([^"]+)"', page.text, re.S).group(1)
        target = urlsplit(link.replace("&amp;", "&"))
        assert target.path == f"/{clinic.slug}/staff"
        assert parse_qs(target.query) == {"doctor": [str(doctor)], "date": [tuesday.isoformat()],
                                          "view": ["day"]}
        # The list of all doctors says so too, and so does the clinic page (a time zone change).
        assert OUTSIDE.findall(admin.get("/doctors").text) == [str(early), str(straddles)]
        assert OUTSIDE.findall(admin.get("/clinic").text) == [str(early), str(straddles)]
        # Nothing was moved or cancelled.
        assert _bookings(pg, clinic) == before
        # Reception, who moves them, sees the same list on the agenda; a viewer does not.
        with staff_session(server, pg, clinic, "reception") as desk:
            agenda = desk.client.get(f"/{clinic.slug}/staff")
            assert OUTSIDE.findall(agenda.text) == [str(early), str(straddles)]
            assert "Move each to a time the doctor works" in agenda.text or \
                "Przenieś każdą" in agenda.text
        with staff_session(server, pg, clinic, "viewer") as viewer:
            assert OUTSIDE.findall(viewer.client.get(f"/{clinic.slug}/staff").text) == []
        # Changing the hours back empties the list.
        admin.post(f"/doctors/{doctor}/hours", {f"hours_{d}": "09:00-17:00" for d in range(1, 6)})
        assert OUTSIDE.findall(admin.get(f"/doctors/{doctor}").text) == []


def test_days_off_and_the_active_flag_list_the_visits_they_leave_outside(server, pg, clinic):
    doctor = clinic.doctors[0]
    monday = _monday_in(3)
    wednesday = add_visit(pg, clinic, monday + timedelta(days=2), time(10))
    friday = add_visit(pg, clinic, monday + timedelta(days=4), time(10))
    before = _bookings(pg, clinic)
    with staff_session(server, pg, clinic, "admin") as admin:
        bad = admin.post(f"/doctors/{doctor}/days-off", {"day": (monday + timedelta(days=2)).isoformat(),
                                                        "until": monday.isoformat()})
        assert bad.status_code == 422 and field_errors(bad.text) == {"until"}
        assert admin.post(f"/doctors/{doctor}/days-off", {"day": "2030-13-01"}).status_code == 422
        r = admin.post(f"/doctors/{doctor}/days-off", {
            "day": (monday + timedelta(days=1)).isoformat(),
            "until": (monday + timedelta(days=3)).isoformat()})
        assert r.status_code == 303
        page = admin.client.get(r.headers["location"])
        days = re.findall(r'data-day-off="([^"]+)"', page.text)
        assert days == [(monday + timedelta(days=n)).isoformat() for n in (1, 2, 3)]
        assert OUTSIDE.findall(page.text) == [str(wednesday)]
        assert f'data-outside-visit="{wednesday}" data-reason="day_off"' in page.text
        assert "dzień wolny" in page.text
        gone = admin.post(f"/doctors/{doctor}/days-off/delete",
                          {"day": (monday + timedelta(days=2)).isoformat()})
        assert gone.status_code == 303
        page = admin.get(f"/doctors/{doctor}")
        assert len(re.findall(r"data-day-off=", page.text)) == 2 and OUTSIDE.findall(page.text) == []
        # An inactive doctor's future visits all need moving.
        admin.post(f"/doctors/{doctor}", {"doctor_name": "dr Test 0"})
        page = admin.get(f"/doctors/{doctor}")
        assert OUTSIDE.findall(page.text) == [str(wednesday), str(friday)]
        assert f'data-outside-visit="{friday}" data-reason="inactive"' in page.text
    assert _bookings(pg, clinic) == before
