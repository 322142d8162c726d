"""Patients' requests (GDPR Art. 15, 17, 20) over real HTTP: find a person by e-mail or
phone, export everything the data map says about them, erase them, and what is refused;
row level security keeping every request inside its clinic, even with a forged tenant."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from helpers import book, owner_sql, session_of, wait_for
from privacy_helpers import (
    admin_client,
    data_map,
    find_everywhere,
    make_admin,
    paid_booking,
    person,
)
from staff_helpers import add_staff, login_token, signed_in

EXPORTED = ("personal", "health-revealing", "payment")


def _visit(pg, clinic, who, *, starts, minutes=30, status="confirmed", paid=True, note=None,
           hold="1 hour"):
    """A visit written as the owner: `starts` is an interval from now ('-2 years')."""
    return owner_sql(
        pg.owner, clinic.id,
        "insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during, status,"
        " hold_expires_at, patient_name, patient_email, patient_phone, amount_minor, currency,"
        " stripe_payment_intent_id, stripe_session_id, note, client_ip, reference)"
        " values (%s, %s, %s, tstzrange(now() + %s::interval,"
        " now() + %s::interval + make_interval(mins => %s)), %s, now() + %s::interval, %s, %s, %s,"
        " 5000, 'pln', %s, %s, %s, '203.0.113.9', dentbook.new_reference()) returning id",
        (clinic.id, clinic.doctors[0], clinic.visits["short"], starts, starts, minutes, status,
         hold, who["name"], who["email"], who["phone"],
         f"pi_{uuid.uuid4().hex}" if paid else None, f"cs_{uuid.uuid4().hex}" if paid else None,
         note))[0][0]


def _erase(c, clinic, **fields):
    token = login_token(c, clinic.slug)
    return c.post(f"/{clinic.slug}/staff/patients/erase", data={"_csrf_token": token, **fields})


def _bookings_of(pg, clinic, who):
    return owner_sql(pg.owner, clinic.id, "select id, status, patient_name from dentbook.bookings"
                     " where patient_email = %s order by starts_at", (who["email"],))


def test_find_export_and_erase_a_patient(client, server, pg, clinic, stripe_local):
    who, other = person(), person()
    future = paid_booking(client, pg, clinic, stripe_local, who)
    past = _visit(pg, clinic, who, starts="-3 days", note=f"{who['name']} prefers mornings")
    lapsed = _visit(pg, clinic, who, starts="10 days", status="expired", paid=False, hold="-1 day")
    kept_other = _visit(pg, clinic, other, starts="5 days")
    classes = data_map(pg)

    with admin_client(server, pg, clinic) as admin:
        # A member of staff opens the visit's page: the export will say so.
        assert admin.get(f"/{clinic.slug}/staff/bookings/{past}").status_code == 200
        found = admin.get(f"/{clinic.slug}/staff/patients", params={"email": who["email"].upper()})
        assert found.status_code == 200 and found.headers["cache-control"] == "no-store"
        rows = {str(b) for b in (future["id"], past, lapsed)}
        assert {r for r in rows if f'data-booking="{r}"' in found.text} == rows
        assert f'data-booking="{kept_other}"' not in found.text
        by_phone = admin.get(f"/{clinic.slug}/staff/patients", params={"phone": who["digits"][-9:]})
        assert all(f'data-booking="{r}"' in by_phone.text for r in rows)

        export = admin.get(f"/{clinic.slug}/staff/patients/export", params={"email": who["email"]})
        assert export.status_code == 200 and export.headers["cache-control"] == "no-store"
        assert export.headers["content-type"].startswith("application/json")
        assert export.headers["content-disposition"].startswith("attachment; filename=")
        data = export.json()

        # Everything the data map says: every personal, health-revealing and payment column
        # of every table about their visits, and nothing of anyone else's.
        assert {b["id"] for b in data["data"]["bookings"]} == rows
        for table, got in data["data"].items():
            expected = {c for c, cls in classes[table].items() if cls in EXPORTED}
            assert expected, table
            for row in got:
                assert expected <= set(row), (table, expected - set(row))
            assert data["data_map"][table] == {c: classes[table][c] for c in expected}
        assert {"bookings", "messages", "audit_log"} <= set(data["data"])
        assert any(m["kind"] == "confirmation" and m["to_address"] == who["email"]
                   for m in data["data"]["messages"])
        assert {a["action"] for a in data["data"]["audit_log"]} >= {"created", "status", "read"}
        assert any(a["action"] == "read" and a["detail"] == f"visit {past}"
                   for a in data["data"]["audit_log"])  # when staff read their visit
        text = json.dumps(data, ensure_ascii=False)
        assert who["name"] in text and who["phone"] in text and "203.0.113.9" in text
        assert other["email"] not in text
        assert "patient_name" in data["on_erasure"]["erased"]["bookings"]
        assert "art. 74" in json.dumps(data["on_erasure"]["kept"], ensure_ascii=False)

        unconfirmed = _erase(admin, clinic, email=who["email"])
        assert unconfirmed.status_code == 422 and 'data-field-error="confirm"' in unconfirmed.text
        assert all(r[2] == who["name"] for r in _bookings_of(pg, clinic, who))

        erased = _erase(admin, clinic, email=who["email"], confirm="true")
        assert erased.status_code == 200 and 'data-erasure="erased"' in erased.text
        assert "art. 74" in erased.text and f'data-kept="{future["id"]}"' in erased.text

    # The future visit was cancelled by the clinic with its whole deposit refunded: the
    # refund is made after commit, from the payment columns the erasure kept.
    wait_for(lambda: owner_sql(pg.owner, clinic.id, "select refunded_at from dentbook.refunds"
                               " where booking_id = %s", (future["id"],)) not in ([], [(None,)]),
             what="refund made")
    row = owner_sql(pg.owner, clinic.id,
                    "select status, cancelled_by, anonymised_at is not null, amount_minor,"
                    " stripe_payment_intent_id, patient_name, patient_email, patient_phone,"
                    " email_key, phone_key, client_ip, holder_hash, reference"
                    " from dentbook.bookings where id = %s", (future["id"],))[0]
    assert row[:5] == ("cancelled", "clinic", True, 5000, future["stripe_payment_intent_id"])
    assert row[5:] == (None,) * 8
    assert owner_sql(pg.owner, clinic.id, "select amount_minor, reason from dentbook.refunds"
                     " where booking_id = %s", (future["id"],)) == [(5000, "cancelled")]
    assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.messages"
                     " where booking_id = %s and kind = 'reminder' and state = 'due'",
                     (future["id"],)) == [(0,)]

    # No column anywhere in the database holds their name, e-mail or phone any more.
    needles = [who["name"], who["email"], who["phone"], who["digits"][-9:],
               who["email"].split("@")[0]]
    assert find_everywhere(pg, needles) == []
    # The other patient is untouched.
    assert _bookings_of(pg, clinic, other) == [(kept_other, "confirmed", other["name"])]
    audit = owner_sql(pg.owner, clinic.id, "select action, after from dentbook.audit_log"
                      " where action like 'patient_%%' order by id")
    assert [a for a, _ in audit] == ["patient_search", "patient_search", "patient_export",
                                     "patient_search", "patient_erase"]
    assert audit[0][1] == {"by": "email", "found": 3} and audit[1][1]["by"] == "phone"
    assert audit[-1][1]["visits"] == 3 and audit[-1][1]["cancelled"] == 1


def test_erasing_an_unknown_person_finds_nothing_and_changes_nothing(server, pg, clinic):
    before = owner_sql(pg.owner, clinic.id, "select (select count(*) from dentbook.audit_log),"
                       " (select count(*) from dentbook.bookings)")
    with admin_client(server, pg, clinic) as admin:
        after_login = owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.audit_log")
        r = _erase(admin, clinic, email="nobody@example.com", confirm="true")
        assert r.status_code == 404 and 'data-erasure="nothing_found"' in r.text
        assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.audit_log") == after_login
        r = admin.get(f"/{clinic.slug}/staff/patients/export", params={"email": "nobody@example.com"})
        assert r.status_code == 404 and 'data-error="nothing_found"' in r.text
        assert admin.get(f"/{clinic.slug}/staff/patients").status_code == 200
        empty = admin.get(f"/{clinic.slug}/staff/patients", params={"email": "", "phone": ""})
        assert empty.status_code == 200
        for bad in ({"email": "not-an-address"}, {"phone": "call me"}):
            r = admin.get(f"/{clinic.slug}/staff/patients", params=bad)
            assert r.status_code == 422 and "data-field-error" in r.text
        r = _erase(admin, clinic, confirm="yes please")
        assert r.status_code == 422
    assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.bookings") == [(before[0][1],)]


@pytest.mark.parametrize("case", ["payment_in_progress", "refund_pending", "visit_in_progress"])
def test_erasure_is_refused_while_a_payment_refund_or_visit_is_under_way(
        case, client, server, pg, clinic):
    who = person()
    _visit(pg, clinic, who, starts="-1 year")
    if case == "payment_in_progress":
        r, _ = book(client, clinic, email=who["email"], name=who["name"])
        assert r.status_code == 303 and session_of(r.headers["location"]).startswith("cs_")
    elif case == "refund_pending":
        cancelled = _visit(pg, clinic, who, starts="4 days", status="cancelled")
        owner_sql(pg.owner, clinic.id,
                  "insert into dentbook.refunds (tenant_id, booking_id, amount_minor, currency,"
                  " payment_intent, reason) values (%s, %s, 5000, 'pln', 'pi_pending', 'cancelled')"
                  " returning 1", (clinic.id, cancelled))
    else:
        _visit(pg, clinic, who, starts="-10 minutes", minutes=60)
    before = _bookings_of(pg, clinic, who)
    with admin_client(server, pg, clinic) as admin:
        r = _erase(admin, clinic, email=who["email"], confirm="true")
    assert r.status_code == 409 and f'data-error="{case}"' in r.text
    assert 'data-erasure="refused"' in r.text
    assert _bookings_of(pg, clinic, who) == before  # nothing changed
    assert owner_sql(pg.owner, clinic.id, "select after->>'refused' from dentbook.audit_log"
                     " where action = 'patient_erase'") == [(case,)]


def _staff_id(pg, clinic, email):
    return owner_sql(pg.owner, clinic.id, "select id from dentbook.staff_accounts where email = %s",
                     (email,))[0][0]


def _as_staff(pg, tenant, staff, sql, params=()):
    """A statement at the staff level as the runtime role, with app.tenant_id and
    app.staff_id set as the caller wishes (forged)."""
    with psycopg.connect(pg.app) as conn:
        conn.execute("select set_config('role', 'dentbook_staff', false),"
                     " set_config('app.tenant_id', %s, false), set_config('app.staff_id', %s, false)",
                     (str(tenant), str(staff)))
        return conn.execute(sql, params).fetchall()


def test_another_clinics_patient_is_never_exported_even_with_a_forged_tenant(
        client, server, pg, make_clinic):
    a, b = make_clinic(), make_clinic()
    who = person()
    _visit(pg, a, who, starts="2 days")
    admin_a, admin_b = make_admin(pg, a), make_admin(pg, b)
    id_a, id_b = _staff_id(pg, a, admin_a), _staff_id(pg, b, admin_b)

    with admin_client(server, pg, b) as other:
        r = other.get(f"/{b.slug}/staff/patients/export", params={"email": who["email"]})
        assert r.status_code == 404 and who["name"] not in r.text
        r = other.get(f"/{b.slug}/staff/patients", params={"phone": who["phone"]})
        assert r.status_code == 404 and who["name"] not in r.text
        # The clinic in the address is B's, whatever else is sent.
        r = other.get(f"/{a.slug}/staff/patients/export", params={"email": who["email"]})
        assert r.status_code == 303 and r.headers["location"] == f"/{a.slug}/staff/login"

    export = "select dentbook.patient_export(%s, null)"
    # B's admin in B's clinic: nothing there.
    assert _as_staff(pg, b.id, id_b, export, (who["email"],)) == [(None,)]
    # A forged tenant: A's clinic with B's admin, or B's clinic with A's admin. The account
    # does not exist in the other clinic, so the role check refuses before anything is read.
    for tenant, staff in ((a.id, id_b), (b.id, id_a)):
        with pytest.raises(psycopg.Error) as refused:
            _as_staff(pg, tenant, staff, export, (who["email"],))
        assert refused.value.sqlstate == "DBK40"
    # The staff level reads no table of another clinic either.
    assert _as_staff(pg, b.id, id_b, "select count(*) from dentbook.bookings"
                     " where patient_email = %s", (who["email"],)) == [(0,)]
    # And A's own admin does find them.
    assert _as_staff(pg, a.id, id_a, export, (who["email"],))[0][0]["data"]["bookings"]


def test_only_admins_handle_patients_requests(client, pg, clinic):
    who = person()
    _visit(pg, clinic, who, starts="2 days")
    reception = add_staff(pg, clinic)
    owner_sql(pg.owner, clinic.id, "update dentbook.staff_accounts set role = 'reception'"
              " where email = %s returning 1", (reception,))
    signed_in(client, clinic.slug, reception)
    for path in ("", "/export"):
        r = client.get(f"/{clinic.slug}/staff/patients{path}", params={"email": who["email"]})
        assert r.status_code == 403 and 'data-error="forbidden"' in r.text
    r = _erase(client, clinic, email=who["email"], confirm="true")
    assert r.status_code == 403
    assert _bookings_of(pg, clinic, who)[0][2] == who["name"]
    with pytest.raises(psycopg.Error) as refused:
        _as_staff(pg, clinic.id, _staff_id(pg, clinic, reception),
                  "select dentbook.patient_erase(%s, null)", (who["email"],))
    assert refused.value.sqlstate == "DBK40"
