"""Who may change the clinic's settings: admins only, checked twice — by the route's guard
(viewer and reception get 403 data-error="forbidden" and nothing changes, nothing is
logged) and by the SQL functions themselves (a reception account's transaction calling
them directly is refused with DBK40). Ids of another clinic in any form or address are
404 and change nothing in either clinic."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from admin_helpers import as_staff, new_staff, snapshot, staff_session
from helpers import owner_sql


@pytest.fixture
def setup(pg, clinic):
    """A clinic with a second account (the target of account changes), an invited account
    with no password yet, a planned day off and a calendar feed (so removing them would
    change something)."""
    _target, target_id = new_staff(pg, clinic, "viewer")
    pending = owner_sql(pg.owner, clinic.id,
                        "insert into dentbook.staff_accounts (tenant_id, email, role, invite_hash,"
                        " invite_expires_at) values (%s, %s, 'viewer', sha256(%s::bytea),"
                        " now() + interval '1 day') returning id",
                        (clinic.id, f"pending-{uuid.uuid4().hex[:6]}@example.test",
                         uuid.uuid4().bytes))[0][0]
    doctor = clinic.doctors[0]
    owner_sql(pg.owner, clinic.id, "insert into dentbook.days_off (tenant_id, doctor_id, day)"
              " values (%s, %s, '2030-01-02') returning 1", (clinic.id, doctor))
    owner_sql(pg.owner, clinic.id, "update dentbook.doctors set feed_hash = sha256(%s::bytea)"
              " where id = %s returning 1", (uuid.uuid4().bytes, doctor))
    return {"staff": target_id, "pending": pending, "doctor": doctor,
            "visit_type": clinic.visits["short"]}


def writes(ids) -> list[tuple[str, dict[str, str]]]:
    """Every settings POST with values an admin may send."""
    d, s, v = ids["doctor"], ids["staff"], ids["visit_type"]
    week = {f"hours_{i}": "08:00-12:00, 13:00-16:00" for i in range(1, 6)}
    return [
        ("/staff/invite", {"email": f"new-{uuid.uuid4().hex[:6]}@example.test", "role": "viewer"}),
        (f"/staff/{ids['pending']}/invite", {}),
        (f"/staff/{s}/role", {"role": "reception"}),
        (f"/staff/{s}/deactivate", {}),
        (f"/staff/{s}/reactivate", {}),
        ("/doctors", {"doctor_name": f"dr {uuid.uuid4().hex[:6]}"}),
        (f"/doctors/{d}", {"doctor_name": "dr Renamed", "active": "on"}),
        (f"/doctors/{d}/hours", week),
        (f"/doctors/{d}/days-off", {"day": "2030-02-01", "until": "2030-02-03"}),
        (f"/doctors/{d}/days-off/delete", {"day": "2030-01-02"}),
        (f"/doctors/{d}/feed", {}),
        (f"/doctors/{d}/feed/delete", {}),
        ("/visit-types", {"name_pl": "Nowa", "name_en": f"New {uuid.uuid4().hex[:6]}",
                          "duration_minutes": "45", "deposit": "60", "active": "on"}),
        (f"/visit-types/{v}", {"name_pl": "Krótka 2", "name_en": "Short 2",
                               "duration_minutes": "20", "deposit": "70.50", "active": "on"}),
        ("/policy", {"cancel_window_hours": "48", "late_refund_percent": "50",
                     "reminder_hours": "48, 2"}),
        ("/retention", {"retention_years": "5", "unpaid_erasure_days": "14"}),
        ("/clinic", {"clinic_name": "Renamed", "address": "ul. Nowa 1, Kraków",
                     "phone": "+48 12 345 67 89", "email": "Recepcja@Example.test",
                     "time_zone": "Europe/Warsaw", "default_locale": "en"}),
    ]


PAGES = ["/", "/staff", "/doctors", "/doctors/{doctor}", "/visit-types",
         "/visit-types/{visit_type}", "/policy", "/clinic"]


@pytest.mark.parametrize("role", ["viewer", "reception"])
def test_every_settings_write_is_forbidden_below_admin_and_changes_nothing(server, pg, clinic,
                                                                          setup, role):
    with staff_session(server, pg, clinic, role) as who:
        before = snapshot(pg, clinic)
        for path, data in writes(setup):
            r = who.post(path, data)
            assert r.status_code == 403, (path, r.status_code)
            assert 'data-error="forbidden"' in r.text, path
            assert snapshot(pg, clinic) == before, path
        for path in PAGES:
            r = who.get(path.format(**setup))
            assert r.status_code == 403 and 'data-error="forbidden"' in r.text, path
        dashboard = who.client.get(f"/{clinic.slug}/staff")
        assert "data-settings-link" not in dashboard.text


def test_every_settings_write_is_allowed_for_an_admin_and_audited(server, pg, clinic, setup):
    with staff_session(server, pg, clinic, "admin") as who:
        assert "data-settings-link" in who.client.get(f"/{clinic.slug}/staff").text
        for path in PAGES:
            assert who.get(path.format(**setup)).status_code == 200, path
        for path, data in writes(setup):
            before = snapshot(pg, clinic)
            r = who.post(path, data)
            assert r.status_code in (200, 303), (path, r.status_code, r.text[-600:])
            after = snapshot(pg, clinic)
            assert after["audit"][0][0] == before["audit"][0][0] + 1, path
            assert after != {**before, "audit": after["audit"]}, path
        actions = [r[0] for r in owner_sql(pg.owner, clinic.id,
                                           "select action from dentbook.audit_log"
                                           " where staff_id = %s and action <> 'signin'"
                                           " order by id", (who.id,))]
        assert actions == ["staff.invited", "staff.invited", "staff.role", "staff.active",
                           "staff.active", "doctor.added", "doctor.changed", "doctor.hours",
                           "doctor.days_off", "doctor.day_on", "doctor.feed", "doctor.feed",
                           "visit_type.added", "visit_type.changed", "clinic.policy",
                           "clinic.retention", "clinic.details"]


def test_not_signed_in_goes_to_the_sign_in_page_and_changes_nothing(client, pg, clinic, setup):
    before = snapshot(pg, clinic)
    page = client.get(f"/{clinic.slug}/staff/login")
    token = page.cookies.get("csrftoken") or client.cookies.get("csrftoken")
    for path, data in writes(setup):
        r = client.post(f"/{clinic.slug}/staff/settings{path}", data={**data, "_csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == f"/{clinic.slug}/staff/login", path
    assert snapshot(pg, clinic) == before


def test_forged_ids_of_another_clinic_are_404_and_change_nothing(server, pg, make_clinic):
    here, there = make_clinic(), make_clinic()
    _, their_staff = new_staff(pg, there, "viewer")
    theirs = {"staff": their_staff, "pending": their_staff, "doctor": there.doctors[0],
              "visit_type": there.visits["short"]}
    with staff_session(server, pg, here, "admin") as who:
        before = snapshot(pg, here), snapshot(pg, there)
        forged = [(p, d) for p, d in writes(theirs) if str(theirs["doctor"]) in p
                  or str(their_staff) in p or str(theirs["visit_type"]) in p]
        assert len(forged) == 11
        for path, data in forged:
            r = who.post(path, data)
            assert r.status_code == 404, (path, r.status_code)
            assert 'data-error="not_found"' in r.text
        for path in ("/doctors/{doctor}", "/visit-types/{visit_type}"):
            assert who.get(path.format(**theirs)).status_code == 404
        # Malformed ids are simply unknown too.
        for path in ("/doctors/not-an-id", "/visit-types/1", "/doctors/%27%3B"):
            assert who.get(path).status_code == 404
        for path in ("/staff/x/role", "/doctors/1/hours", "/visit-types/--"):
            assert who.post(path, {"role": "admin"}).status_code == 404
        assert (snapshot(pg, here), snapshot(pg, there)) == before


# Every admin function, called at the staff level with arguments that would work for an admin.
SQL_CALLS = [
    ("admin_staff", "select * from dentbook.admin_staff()"),
    ("admin_invite", "select dentbook.admin_invite('sql@example.test', 'admin',"
     " sha256(gen_random_uuid()::text::bytea), now() + interval '1 day')"),
    ("admin_reinvite", "select dentbook.admin_reinvite(%(pending)s,"
     " sha256(gen_random_uuid()::text::bytea), now())"),
    ("admin_set_role", "select dentbook.admin_set_role(%(me)s, 'admin')"),
    ("admin_set_active", "select dentbook.admin_set_active(%(staff)s, false)"),
    ("admin_add_doctor", "select dentbook.admin_add_doctor('dr SQL')"),
    ("admin_update_doctor", "select dentbook.admin_update_doctor(%(doctor)s, 'dr SQL 2', true)"),
    ("admin_set_hours",
     "select dentbook.admin_set_hours(%(doctor)s, '{1}', '{08:00}', '{09:00}')"),
    ("admin_add_days_off", "select dentbook.admin_add_days_off(%(doctor)s, '2030-03-01',"
     " '2030-03-02')"),
    ("admin_remove_day_off", "select dentbook.admin_remove_day_off(%(doctor)s, '2030-01-02')"),
    ("admin_set_feed", "select dentbook.admin_set_feed(%(doctor)s,"
     " sha256(gen_random_uuid()::text::bytea))"),
    ("admin_add_visit_type", "select dentbook.admin_add_visit_type('a', 'b', 30, 5000)"),
    ("admin_update_visit_type", "select dentbook.admin_update_visit_type(%(visit_type)s, 'c',"
     " 'd', 30, 5000, true)"),
    ("admin_set_policy", "select dentbook.admin_set_policy(1, 50, '{2}')"),
    ("admin_set_retention", "select dentbook.admin_set_retention(4, 10)"),
    ("admin_set_clinic", "select dentbook.admin_set_clinic('X', '', '', '', 'UTC', 'en')"),
]


def test_every_admin_function_is_covered_here(pg):
    with psycopg.connect(pg.owner) as conn:
        names = {r[0] for r in conn.execute(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'dentbook' and p.proname like 'admin\\_%%'")}
    assert names == {name for name, _ in SQL_CALLS}


@pytest.mark.parametrize("role", ["viewer", "reception", "deactivated admin", "nobody"])
def test_the_sql_functions_check_the_role_themselves(pg, clinic, setup, role):
    """A route that forgot its guard still cannot write: the function refuses (DBK40)."""
    account = None
    if role != "nobody":
        _, account = new_staff(pg, clinic, role.split()[-1])
        if role.startswith("deactivated"):
            owner_sql(pg.owner, clinic.id, "update dentbook.staff_accounts set active = false"
                      " where id = %s returning 1", (account,))
    values = {**setup, "me": account}
    before = snapshot(pg, clinic)
    for name, sql in SQL_CALLS:
        with pytest.raises(psycopg.Error) as refused, as_staff(pg, clinic, account) as conn:
            conn.execute(sql, values)
        assert refused.value.sqlstate == "DBK40", name
    if role in ("viewer", "nobody"):
        with pytest.raises(psycopg.Error) as refused, as_staff(pg, clinic, account) as conn:
            conn.execute("select * from dentbook.visits_outside_hours(null, 10)")
        assert refused.value.sqlstate == "DBK40"
    assert snapshot(pg, clinic) == before


def test_the_same_calls_work_for_an_admin(pg, clinic, setup):
    _, account = new_staff(pg, clinic, "admin")
    values = {**setup, "me": account}
    for _, sql in SQL_CALLS:
        with as_staff(pg, clinic, account) as conn:
            conn.execute(sql, values)
    logged = owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.audit_log"
                       " where staff_id = %s", (account,))
    # Every call but the one that only reads the list of accounts (set_role to the role
    # the account already has changes nothing, so logs nothing).
    assert logged == [(len(SQL_CALLS) - 2,)]


def test_the_doors_for_people_not_signed_in_are_service_level_only(pg):
    with psycopg.connect(pg.owner) as conn:
        for fn in ("invite_lookup(bytea)", "invite_accept(bytea, text)", "feed_doctor(bytea)",
                   "feed_events(bytea, timestamptz, timestamptz)"):
            for role, expected in (("dentbook_anon", False), ("dentbook_staff", False),
                                   ("dentbook_service", True)):
                allowed = conn.execute("select has_function_privilege(%s, %s, 'execute')",
                                       (role, f"dentbook.{fn}")).fetchone()
                assert allowed == (expected,), (role, fn)


@pytest.mark.parametrize("junk", ["x" * 5000, "\u202e\u0000", "９", "-1"])
def test_junk_in_every_field_is_a_clear_4xx_never_a_500(server, pg, clinic, setup, junk):
    with staff_session(server, pg, clinic, "admin") as who:
        before = snapshot(pg, clinic)
        for path, data in writes(setup):
            if not data or path.endswith("/delete"):
                continue
            for field in data:
                r = who.post(path, {**data, field: junk})
                assert r.status_code in (303, 422), (path, field, r.status_code)
                if r.status_code == 422:
                    assert 'data-field-error="' in r.text or 'data-error="' in r.text
        # What did pass (e.g. "-1" as a day's hours is no range at all) was still checked.
        changed = snapshot(pg, clinic)
        assert changed["bookings"] == before["bookings"]
