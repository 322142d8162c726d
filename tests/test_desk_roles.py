"""Who may do what at the front desk, checked twice: by the route's guard (a viewer gets 403
`data-error="forbidden"` and nothing changes) and by the SQL functions themselves, which
read the account set for the transaction (called directly as a viewer: refused). Another
clinic's ids in any form are unknown (404) and change nothing anywhere."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest

from dentbook import demo
from desk_helpers import ROLES, desk, done, row, slots, snapshot, staff_id
from helpers import next_weekday, owner_sql
from staff_helpers import add_staff, insert_booking, sign_in


def _block(pg, clinic, starts: str = "2 days") -> uuid.UUID:
    return owner_sql(pg.owner, clinic.id, """
        insert into dentbook.bookings (tenant_id, doctor_id, during, status, hold_expires_at,
            amount_minor, currency, kind, block_reason)
        values (%s, %s, tstzrange(date_trunc('minute', now() + %s::interval),
                                  date_trunc('minute', now() + %s::interval) + interval '1 hour'),
                'confirmed', now(), 0, 'pln', 'block', 'Zebranie') returning id""",
                     (clinic.id, clinic.doctors[0], starts, starts))[0][0]


def _actions(client, pg, clinic):
    """Each front-desk write: (name, path, form), set up afresh in `clinic`."""
    free = slots(client, clinic)
    visit = insert_booking(pg, clinic, "3 days", "Rola Testowa")
    soon = insert_booking(pg, clinic, "10 minutes", "Zaraz Będzie")
    blocked = _block(pg, clinic)
    end = free[1].replace("Z", "+00:00")
    return [
        ("phone", "/bookings", {"doctor_id": str(clinic.doctors[0]),
                                "visit_type_id": str(clinic.visits["short"]), "start": free[0],
                                "name": "Pan Telefon", "phone": "600 100 100"}),
        ("block", "/blocks", {"doctor_id": str(clinic.doctors[0]), "start": free[0], "end": end,
                              "reason": "Przerwa"}),
        ("unblock", f"/blocks/{blocked}/delete", {}),
        ("move", f"/bookings/{visit}/move", {"start": free[2]}),
        ("cancel", f"/bookings/{visit}/cancel", {"reason": "Odwołane"}),
        ("attendance", f"/bookings/{soon}/attendance", {"state": "arrived"}),
    ]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ["phone", "block", "unblock", "move", "cancel", "attendance"])
def test_each_action_with_each_role(client, server, pg, make_clinic, role, action):
    clinic = make_clinic()
    _, path, data = next(a for a in _actions(client, pg, clinic) if a[0] == action)
    with desk(server, pg, clinic, role=role) as d:
        before = snapshot(pg, clinic)
        r = d.post(path, data)
        if role == "viewer":
            assert r.status_code == 403 and 'data-error="forbidden"' in r.text, r.text[-800:]
            assert snapshot(pg, clinic) == before
        else:
            assert done(r)[1] in ("booked", "blocked", "unblocked", "moved", "cancelled",
                                  "attendance")
            assert snapshot(pg, clinic) != before
            who = owner_sql(pg.owner, clinic.id, "select staff_id from dentbook.audit_log"
                            " where action <> 'read' order by id desc limit 1")[0][0]
            assert who == staff_id(pg, clinic, d.email)


@pytest.mark.parametrize("role", ROLES)
def test_the_forms_are_for_reception_and_admins(server, pg, clinic, role):
    with desk(server, pg, clinic, role=role) as d:
        for path in ("/bookings/new", "/blocks/new"):
            r = d.get(path)
            if role == "viewer":
                assert r.status_code == 403 and 'data-error="forbidden"' in r.text
            else:
                assert r.status_code == 200 and 'data-form=' in r.text
        agenda = d.get("", view="day", date=next_weekday(7).isoformat())
        assert ('data-desk="phone"' in agenda.text) == (role != "viewer")
        assert ("data-free=" in agenda.text) == (role != "viewer")
        assert agenda.status_code == 200 and d.get("/audit").status_code == 200


def test_not_signed_in_goes_to_the_sign_in_page_and_changes_nothing(client, pg, clinic):
    before = snapshot(pg, clinic)
    r = client.post(f"/{clinic.slug}/staff/bookings/{uuid.uuid4()}/cancel", data={"reason": "x"})
    assert r.status_code in (303, 403)  # the sign-in page, or the CSRF refusal first
    assert snapshot(pg, clinic) == before


def _call_as(pg, clinic, account: uuid.UUID | None, statement: str, params: tuple = ()):
    with psycopg.connect(pg.app) as conn:
        conn.execute("select set_config('role', 'dentbook_staff', false),"
                     " set_config('app.tenant_id', %s, false), set_config('app.staff_id', %s, false),"
                     " set_config('app.actor', 'staff', false)",
                     (str(clinic.id), str(account) if account else ""))
        return conn.execute(statement, params).fetchall()


def _calls(clinic, visit, blocked):
    start = "now() + interval '8 days'"
    return [
        f"select * from dentbook.desk_book('{clinic.doctors[0]}', '{clinic.visits['short']}',"
        f" {start}, 'X', '600100100', '', '', 'pl', interval '1 year')",
        f"select dentbook.desk_block('{clinic.doctors[0]}', {start}, {start} + interval '1 hour', 'x')",
        f"select dentbook.desk_unblock('{blocked}')",
        f"select * from dentbook.desk_move('{visit}', {start}, null, interval '1 year')",
        f"select dentbook.desk_cancel('{visit}', 'x')",
        f"select dentbook.desk_attendance('{visit}', 'arrived')",
    ]


def test_the_sql_functions_check_the_role_themselves(pg, make_clinic):
    """A route that forgot its guard still cannot write: the functions read app.staff_id."""
    clinic, other = make_clinic(), make_clinic()
    visit = insert_booking(pg, clinic, "3 days", "Sql Pacjent")
    blocked = _block(pg, clinic)
    viewer = staff_id(pg, clinic, add_staff(pg, clinic, role="viewer"))
    elsewhere = staff_id(pg, other, add_staff(pg, other, role="admin"))
    gone = staff_id(pg, clinic, add_staff(pg, clinic, role="reception"))
    owner_sql(pg.owner, clinic.id, "update dentbook.staff_accounts set active = false"
              " where id = %s", (gone,))
    before = snapshot(pg, clinic)
    for account in (viewer, None, elsewhere, gone):
        for statement in _calls(clinic, visit, blocked):
            with pytest.raises(psycopg.Error) as refused:
                _call_as(pg, clinic, account, statement)
            assert refused.value.sqlstate == "DBK40", (account, statement)
    assert snapshot(pg, clinic) == before
    # The same call as reception goes through (so the refusals above were about the role).
    reception = staff_id(pg, clinic, add_staff(pg, clinic, role="reception"))
    assert _call_as(pg, clinic, reception, _calls(clinic, visit, blocked)[4]) == [(0,)]
    assert row(pg, clinic, visit)["status"] == "cancelled"


def test_reads_and_writes_of_the_audit_need_an_account(pg, clinic):
    for statement in ("select dentbook.audit_read('agenda')", "select * from dentbook.audit_accounts()"):
        with pytest.raises(psycopg.Error) as refused:
            _call_as(pg, clinic, None, statement)
        assert refused.value.sqlstate == "DBK40"
    viewer = staff_id(pg, clinic, add_staff(pg, clinic, role="viewer"))
    assert len(_call_as(pg, clinic, viewer, "select * from dentbook.audit_accounts()")) >= 1


def test_forged_ids_of_another_clinic_are_unknown_everywhere(client, server, pg, make_clinic):
    a, b = make_clinic(), make_clinic()
    free = slots(client, a)
    visit_a = insert_booking(pg, a, "3 days", "Anna Alfa")
    visit_b = insert_booking(pg, b, "3 days", "Bożena Beta")
    soon_b = insert_booking(pg, b, "10 minutes", "Bogdan Beta")
    block_b = _block(pg, b)
    short_a, short_b = str(a.visits["short"]), str(b.visits["short"])
    phone = {"name": "Fałszerz", "phone": "600 100 100", "start": free[0]}
    forged = [
        ("/bookings", {**phone, "doctor_id": str(b.doctors[0]), "visit_type_id": short_a}),
        ("/bookings", {**phone, "doctor_id": str(a.doctors[0]), "visit_type_id": short_b}),
        ("/blocks", {"doctor_id": str(b.doctors[0]), "start": free[0],
                     "end": free[1], "reason": "x"}),
        (f"/bookings/{visit_a}/move", {"start": free[0], "doctor_id": str(b.doctors[0])}),
        (f"/bookings/{visit_b}/move", {"start": free[0]}),
        (f"/bookings/{visit_b}/cancel", {"reason": "x"}),
        (f"/bookings/{soon_b}/attendance", {"state": "no_show"}),
        (f"/blocks/{block_b}/delete", {}),
        (f"/bookings/{uuid.uuid4()}/cancel", {"reason": "x"}),
        ("/bookings/not-an-id/cancel", {"reason": "x"}),
        ("/blocks/not-an-id/delete", {}),
        ("/bookings", {**phone, "doctor_id": "not-an-id", "visit_type_id": short_a}),
    ]
    with desk(server, pg, a, role="admin") as d:
        before = (snapshot(pg, a), snapshot(pg, b))
        for path, data in forged:
            r = d.post(path, data)
            assert r.status_code == 404 and 'data-error="not_found"' in r.text, (path, data)
        for path in (f"/bookings/{visit_b}", f"/bookings/{block_b}", "/bookings/x"):
            assert d.get(path).status_code == 404, path
        assert (snapshot(pg, a), snapshot(pg, b)) == before
        # The agenda and the audit log refuse another clinic's doctor, visit and account too.
        assert d.get("", doctor=b.doctors[0]).status_code == 400
        assert 'data-audit="' not in d.get("/audit", booking=visit_b).text
        b_staff = staff_id(pg, b, add_staff(pg, b))
        assert 'data-audit="' not in d.get("/audit", staff=b_staff).text



def test_the_demo_accounts_sign_in_with_their_roles(server):
    """The README's demo accounts: each signs in with `test` and can do what its role may."""
    reaches = {"admin": (200, 200), "reception": (403, 200), "viewer": (403, 403)}
    for slug, c in demo.CLINICS.items():
        for email, role in c["staff"].items():
            with httpx.Client(base_url=server.url, timeout=30) as client:
                r = sign_in(client, slug, email, demo.PASSWORD)
                assert (r.status_code, r.headers.get("location")) == (303, f"/{slug}/staff"), email
                assert client.get(f"/{slug}/staff").status_code == 200, email
                settings = client.get(f"/{slug}/staff/settings").status_code
                phone_form = client.get(f"/{slug}/staff/bookings/new").status_code
                assert (settings, phone_form) == reaches[role], (email, role)
