"""Visit types, the cancellation policy and the clinic's details as the admin keeps them,
over real HTTP: a visit type's change never rewrites a booked visit (its time and amount
stay; new bookings get the new ones), bad values are refused field by field, and the
clinic's details are on its public page the moment they are saved — in this process and,
through the tenants trigger's announcement, in another one that had them cached."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import httpx

from admin_helpers import WARSAW, add_visit, field_errors, snapshot, staff_session
from helpers import Server, app_settings, book, owner_sql, wait_for

OUTSIDE = re.compile(r'data-outside-visit="([^"]+)"')


def _booking(pg, clinic, booking_id) -> tuple:
    return owner_sql(pg.owner, clinic.id, "select during, amount_minor, visit_type_id"
                     " from dentbook.bookings where id = %s", (booking_id,))[0]


def _hold(client, pg, clinic, index: int = 0):
    r, start = book(client, clinic, index=index, email=f"pat{index}@example.test")
    assert r.status_code == 303, r.text[-400:]
    return owner_sql(pg.owner, clinic.id, "select id from dentbook.bookings where starts_at = %s",
                     (datetime.fromisoformat(start),))[0][0]


def test_a_visit_type_change_never_rewrites_booked_visits(server, pg, clinic, client):
    short = clinic.visits["short"]
    held = _hold(client, pg, clinic)
    during, amount, _ = _booking(pg, clinic, held)
    assert amount == 5000 and during.upper - during.lower == timedelta(minutes=30)
    with staff_session(server, pg, clinic, "admin") as admin:
        page = admin.get(f"/visit-types/{short}")
        assert 'value="50.00"' in page.text and 'value="30"' in page.text
        r = admin.post(f"/visit-types/{short}", {"name_pl": "Przegląd", "name_en": "Check-up",
                                                 "duration_minutes": "60", "deposit": "99,90",
                                                 "active": "on"})
        assert r.status_code == 303
    assert owner_sql(pg.owner, clinic.id, "select name_pl, name_en, duration_minutes, deposit_minor"
                     " from dentbook.visit_types where id = %s", (short,)) == [
        ("Przegląd", "Check-up", 60, 9990)]
    assert _booking(pg, clinic, held) == (during, 5000, short)  # as it was booked
    # A visit booked from now on is an hour and costs the new deposit.
    later = _hold(client, pg, clinic, index=5)
    new_during, new_amount, _ = _booking(pg, clinic, later)
    assert new_amount == 9990 and new_during.upper - new_during.lower == timedelta(minutes=60)


def test_adding_a_visit_type_and_refusing_bad_values(server, pg, clinic, client):
    with staff_session(server, pg, clinic, "admin") as admin:
        before = snapshot(pg, clinic)
        r = admin.post("/visit-types", {"name_pl": "", "name_en": "Long", "duration_minutes": "3",
                                        "deposit": "1.999"})
        assert r.status_code == 422
        assert field_errors(r.text) == {"name_pl", "duration_minutes"}
        r = admin.post("/visit-types", {"name_pl": "A", "name_en": "B", "duration_minutes": "481",
                                        "deposit": "1"})
        assert field_errors(r.text) == {"duration_minutes"}
        for deposit in ("1", "1.99", "100000.01", "abc", "-5", "5e3"):
            r = admin.post("/visit-types", {"name_pl": "A", "name_en": "B",
                                            "duration_minutes": "30", "deposit": deposit})
            assert r.status_code == 422 and field_errors(r.text) == {"deposit"}, deposit
        taken = admin.post("/visit-types", {"name_pl": "Inna", "name_en": "Long",
                                            "duration_minutes": "30", "deposit": "20"})
        assert taken.status_code == 422 and field_errors(taken.text) == {"name_en"}
        assert 'value="Inna"' in taken.text
        assert snapshot(pg, clinic) == before
        ok = admin.post("/visit-types", {"name_pl": "Wybielanie", "name_en": "Whitening",
                                         "duration_minutes": "45", "deposit": "2", "active": "on"})
        assert ok.status_code == 303
        added = owner_sql(pg.owner, clinic.id, "select id, duration_minutes, deposit_minor, active"
                          " from dentbook.visit_types where name_en = 'Whitening'")
        assert [r[1:] for r in added] == [(45, 200, True)]
        assert str(added[0][0]) in client.get(f"/{clinic.slug}").text
        # Inactive: no longer offered to patients.
        admin.post(f"/visit-types/{added[0][0]}", {"name_pl": "Wybielanie", "name_en": "Whitening",
                                                   "duration_minutes": "45", "deposit": "2"})
        assert str(added[0][0]) not in client.get(f"/{clinic.slug}").text


def test_the_policy_is_saved_checked_and_shown_to_patients(server, pg, clinic, client):
    with staff_session(server, pg, clinic, "admin") as admin:
        before = snapshot(pg, clinic)
        for window, percent, reminders, wrong in (
                ("721", "0", "", {"cancel_window_hours"}), ("24", "101", "", {"late_refund_percent"}),
                ("-1", "x", "24", {"cancel_window_hours", "late_refund_percent"}),
                ("24", "0", "0", {"reminder_hours"}), ("24", "0", "24, 24", {"reminder_hours"}),
                ("24", "0", "1,2,3,4,5,6", {"reminder_hours"}), ("24", "0", "721", {"reminder_hours"}),
                ("24", "0", "tomorrow", {"reminder_hours"}), ("24", "0", "2.5", {"reminder_hours"})):
            r = admin.post("/policy", {"cancel_window_hours": window, "late_refund_percent": percent,
                                       "reminder_hours": reminders})
            assert r.status_code == 422 and field_errors(r.text) == wrong, (window, percent, reminders)
        assert snapshot(pg, clinic) == before
        r = admin.post("/policy", {"cancel_window_hours": "48", "late_refund_percent": "25",
                                   "reminder_hours": "2; 48"})
        assert r.status_code == 303
        assert 'value="48, 2"' in admin.client.get(r.headers["location"]).text
    assert owner_sql(pg.owner, clinic.id, "select cancel_window_hours, late_refund_percent,"
                     " reminder_hours from dentbook.tenants"
                     " where id = dentbook.current_tenant()") == [(48, 25, [48, 2])]
    public = client.get(f"/{clinic.slug}", params={"lang": "en"}).text
    assert "up to 48 hours before the visit" in public and "later, 25% of it" in public
    with staff_session(server, pg, clinic, "admin") as admin:
        admin.post("/policy", {"cancel_window_hours": "0", "late_refund_percent": "0",
                               "reminder_hours": ""})
    assert owner_sql(pg.owner, clinic.id, "select reminder_hours from dentbook.tenants"
                     " where id = dentbook.current_tenant()") == [([],)]


def test_retention_is_the_admins_to_set_checked_and_stated_in_the_notice(server, pg, make_clinic,
                                                                         client):
    clinic = make_clinic()
    with staff_session(server, pg, clinic, "admin") as admin:
        page = admin.get("/policy").text
        assert 'name="retention_years"' in page and 'value="3"' in page  # the defaults
        before = snapshot(pg, clinic)
        for years, days, wrong in (("0", "7", {"retention_years"}), ("31", "7", {"retention_years"}),
                                   ("3", "91", {"unpaid_erasure_days"}),
                                   ("x", "", {"retention_years", "unpaid_erasure_days"})):
            r = admin.post("/retention", {"retention_years": years, "unpaid_erasure_days": days})
            assert r.status_code == 422 and field_errors(r.text) == wrong, (years, days)
            assert f'value="{years}"' in r.text  # what was typed is kept
        assert snapshot(pg, clinic) == before
        r = admin.post("/retention", {"retention_years": "5", "unpaid_erasure_days": "14"})
        assert r.status_code == 303 and r.headers["location"].endswith("#retention")
    assert owner_sql(pg.owner, clinic.id, "select retention_years, unpaid_erasure_days from"
                     " dentbook.tenants where id = dentbook.current_tenant()") == [(5, 14)]
    [(before_, after)] = owner_sql(pg.owner, clinic.id, "select before, after from"
                                   " dentbook.audit_log where action = 'clinic.retention'")
    assert (before_, after) == ({"retention_years": 3, "unpaid_erasure_days": 7},
                                {"retention_years": 5, "unpaid_erasure_days": 14})
    # The standard notice states the clinic's own period.
    notice = client.get(f"/{clinic.slug}/privacy", params={"lang": "en"}).text
    assert "5 years" in notice


def test_clinic_details_are_on_the_public_page_at_once_in_every_process(server, pg, clinic, client):
    other = Server(app_settings(pg)).start()  # another server process with its own cache
    try:
        with httpx.Client(base_url=other.url, timeout=30) as elsewhere:
            assert "ul. Zielona 5" not in elsewhere.get(f"/{clinic.slug}").text  # now cached there
            with staff_session(server, pg, clinic, "admin") as admin:
                assert 'value="Europe/Warsaw"' in admin.get("/clinic").text
                r = admin.post("/clinic", {
                    "clinic_name": "Przychodnia Zielona", "address": "ul. Zielona 5, 00-001 Warszawa",
                    "phone": "+48 22 123 45 67", "email": "Recepcja@Zielona.example",
                    "time_zone": "Europe/Warsaw", "default_locale": "en"})
                assert r.status_code == 303
            here = client.get(f"/{clinic.slug}")  # the very next request, same process
            assert "ul. Zielona 5, 00-001 Warszawa" in here.text and "+48 22 123 45 67" in here.text
            assert "Przychodnia Zielona" in here.text and here.headers["content-language"] == "en"
            wait_for(lambda: "ul. Zielona 5" in elsewhere.get(f"/{clinic.slug}").text,
                     what="the other process to forget the clinic")
            assert "Przychodnia Zielona" in elsewhere.get("/").text
    finally:
        other.stop()
    assert owner_sql(pg.owner, clinic.id, "select email, default_locale from dentbook.tenants"
                     " where id = dentbook.current_tenant()") == [
        ("recepcja@zielona.example", "en")]


def test_clinic_details_refuse_bad_values_field_by_field(server, pg, clinic):
    with staff_session(server, pg, clinic, "admin") as admin:
        before = snapshot(pg, clinic)
        good = {"clinic_name": "X", "address": "", "phone": "", "email": "",
                "time_zone": "Europe/Warsaw", "default_locale": "pl"}
        for change, wrong in (({"time_zone": "Mars/Olympus"}, {"time_zone"}),
                              ({"time_zone": "../../etc/passwd"}, {"time_zone"}),
                              ({"time_zone": "posixrules"}, {"time_zone"}),
                              ({"clinic_name": ""}, {"clinic_name"}),
                              ({"email": "not-an-address"}, {"email"}),
                              ({"phone": "call me"}, {"phone"}),
                              ({"address": "a" * 301}, {"address"}),
                              ({"address": "ul. \u202eZła"}, {"address"}),
                              ({"default_locale": "de"}, {"default_locale"})):
            r = admin.post("/clinic", {**good, **change})
            assert r.status_code == 422 and field_errors(r.text) == wrong, change
        assert snapshot(pg, clinic) == before


def test_a_new_time_zone_lists_the_visits_it_leaves_outside_hours(server, pg, clinic):
    today = datetime.now(WARSAW).date()
    tuesday = today + timedelta(days=(1 - today.weekday()) % 7 + 14)
    start = datetime.combine(tuesday, time(10), tzinfo=WARSAW)  # 17:00 or 18:00 in Tokyo
    visit = add_visit(pg, clinic, tuesday, time(10))
    with staff_session(server, pg, clinic, "admin") as admin:
        assert OUTSIDE.findall(admin.get("/clinic").text) == []
        r = admin.post("/clinic", {"clinic_name": "Tokyo branch", "time_zone": "Asia/Tokyo",
                                   "default_locale": "en"})
        assert r.status_code == 303
        assert OUTSIDE.findall(admin.client.get(r.headers["location"]).text) == [str(visit)]
    assert owner_sql(pg.owner, clinic.id, "select lower(during) from dentbook.bookings"
                     " where id = %s", (visit,)) == [(start,)]
