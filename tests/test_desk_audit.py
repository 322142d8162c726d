"""The audit log as staff read it: who, when, what, before and after, which visit (rows
with `data-audit`), filtered by visit and by account, exported whole as streamed CSV; and
append-only in the database, even for the tables' owner."""

from __future__ import annotations

import csv
import io
import re
import uuid

import psycopg
import pytest

from desk_helpers import desk, done, slots, staff_id
from helpers import owner_sql
from staff_helpers import insert_booking


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text)))


def test_every_front_desk_change_is_on_the_audit_page(client, server, pg, clinic):
    free = slots(client, clinic)
    with desk(server, pg, clinic) as d, desk(server, pg, clinic, role="admin") as a:
        _, _, visit = done(d.book(clinic.doctors[0], clinic.visits["short"], free[0],
                                  name="Audyt Pacjent"))
        done(a.post(f"/bookings/{visit}/move", {"start": free[3]}))
        done(d.post(f"/bookings/{visit}/cancel", {"reason": "Prywatny powód Kowalskiego"}))
        _, _, blocked = done(d.block(clinic.doctors[0], free[5], free[6], reason="Sprzątanie"))
        done(d.post(f"/blocks/{blocked}/delete"))

        page = a.get("/audit", booking=visit)
        assert page.status_code == 200
        rows = page.text.split("data-audit=")[1:]
        assert [r.split('data-action="')[1].split('"')[0] for r in rows] == [
            "status", "moved", "created"]  # newest first
        cancelled, moved, created = rows
        assert d.email in cancelled and a.email in moved and d.email in created
        assert 'data-change="status" data-before="confirmed" data-after="cancelled"' in cancelled
        assert 'data-change="start"' in moved and 'data-change="end"' in moved
        # The page names visits by reference, never patients, nor free-text reasons.
        assert "Audyt Pacjent" not in page.text and "Kowalskiego" not in page.text
        reference = owner_sql(pg.owner, clinic.id, "select reference from dentbook.bookings"
                              " where id = %s", (visit,))[0][0]
        assert reference in created

        block_rows = a.get("/audit", booking=blocked).text.split("data-audit=")[1:]
        assert [r.split('data-action="')[1].split('"')[0] for r in block_rows] == [
            "status", "block"]

        # By account: only what that account did (and its sign-ins and reads).
        mine = a.get("/audit", staff=staff_id(pg, clinic, a.email)).text
        actions = set(re.findall(r'data-action="(\w+)"', mine))
        assert actions <= {"moved", "read", "signin"} and "moved" in actions


def test_bad_filters_are_refused(server, pg, clinic):
    with desk(server, pg, clinic, role="viewer") as v:
        for params, code in (({"booking": "x"}, "invalid_booking"),
                             ({"staff": "nobody"}, "invalid_staff"),
                             ({"format": "xls"}, "invalid_format")):
            r = v.get("/audit", **params)
            assert r.status_code == 400 and f'data-error="{code}"' in r.text, params
        assert v.get("/audit", booking=uuid.uuid4()).status_code == 200


def test_the_csv_export_streams_the_whole_filtered_log(server, pg, clinic):
    insert_booking(pg, clinic, "2 days", "Lista Widoczna")  # signing in lands on a list: a read
    with desk(server, pg, clinic, role="viewer") as v:
        # More rows than one batch of the stream, and a detail a spreadsheet would run.
        owner_sql(pg.owner, clinic.id, """
            insert into dentbook.audit_log (tenant_id, detail, actor, action)
            select %s, 'bulk ' || g, 'system', 'bulk' from generate_series(1, 1234) g""",
                  (clinic.id,))
        owner_sql(pg.owner, clinic.id, "insert into dentbook.audit_log (tenant_id, detail, actor,"
                  " action) values (%s, '=HYPERLINK(\"x\")', 'system', 'bulk')", (clinic.id,))
        whole = _csv(v.get("/audit.csv"))
        ids = [int(r["id"]) for r in whole]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
        total = owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.audit_log")[0][0]
        assert len(whole) == total >= 1235
        assert whole[0]["detail"] == "'=HYPERLINK(\"x\")"
        assert list(whole[0]) == ["id", "at", "actor", "account", "action", "detail", "visit",
                                  "reference", "from_status", "to_status", "before", "after"]
        # The same with ?format=csv, and filtered by account.
        assert len(_csv(v.get("/audit", format="csv"))) == total
        me = staff_id(pg, clinic, v.email)
        own = _csv(v.get("/audit.csv", staff=me))
        assert [(r["account"], r["action"]) for r in own] == [(v.email, "read"),
                                                              (v.email, "signin")]


def test_another_clinics_log_is_never_in_the_export(server, pg, make_clinic):
    a, b = make_clinic(), make_clinic()
    owner_sql(pg.owner, b.id, "insert into dentbook.audit_log (tenant_id, detail, actor, action)"
              " values (%s, 'secret of b', 'system', 'bulk')", (b.id,))
    with desk(server, pg, a, role="viewer") as v:
        assert "secret of b" not in v.get("/audit.csv").text
        assert "secret of b" not in v.get("/audit").text


@pytest.mark.parametrize("statement", [
    "update dentbook.audit_log set detail = 'rewritten'",
    "delete from dentbook.audit_log",
    "truncate dentbook.audit_log",
])
def test_the_log_is_append_only_even_for_its_owner(pg, clinic, statement):
    owner_sql(pg.owner, clinic.id, "insert into dentbook.audit_log (tenant_id, detail, actor,"
              " action) values (%s, 'kept', 'system', 'bulk')", (clinic.id,))
    with pytest.raises(psycopg.Error) as refused:
        owner_sql(pg.owner, clinic.id, statement)
    assert refused.value.sqlstate == "DBK09"
    # The staff level has no such grant at all.
    with psycopg.connect(pg.app) as conn:
        conn.execute("select set_config('role', 'dentbook_staff', false),"
                     " set_config('app.tenant_id', %s, false)", (str(clinic.id),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.audit_log"
                     " where detail = 'kept'") == [(1,)]
