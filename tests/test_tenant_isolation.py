"""G2 at the database: forced RLS everywhere, an unprivileged runtime role, and a tenant
that only ever sees itself, even when a query forgets to filter."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from dentbook.db import Level
from helpers import owner_sql

TABLES = """
select c.relname, c.relrowsecurity, c.relforcerowsecurity
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'dentbook' and c.relkind in ('r', 'p') order by 1
"""


def _tables(url: str) -> list[tuple[str, bool, bool]]:
    with psycopg.connect(url) as conn:
        return conn.execute(TABLES).fetchall()


def test_every_table_has_rls_enabled_and_forced(pg):
    tables = _tables(pg.owner)
    assert len(tables) >= 10
    for name, enabled, forced in tables:
        assert enabled and forced, f"{name}: rls enabled={enabled} forced={forced}"


def test_runtime_role_is_unprivileged_and_owns_nothing(pg):
    with psycopg.connect(pg.app) as conn:
        role = conn.execute(
            "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit"
            " from pg_roles where rolname = current_user").fetchone()
        assert role == (False, False, False, False, False)
        owned = conn.execute(
            "select count(*) from pg_class c join pg_roles r on r.oid = c.relowner"
            " where r.rolname in ('dentbook_app', 'dentbook_anon', 'dentbook_staff',"
            " 'dentbook_service')").fetchone()
        assert owned == (0,)
        levels = conn.execute(
            "select rolname, rolsuper, rolbypassrls from pg_roles where rolname = any(%s)",
            ([lvl.value for lvl in Level],)).fetchall()
        assert {(n, s, b) for n, s, b in levels} == {(lvl.value, False, False) for lvl in Level}


def test_login_role_alone_can_read_nothing(pg):
    with psycopg.connect(pg.app) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from dentbook.bookings")


def _count_as(pg, level: Level, tenant: uuid.UUID | None, table: str) -> int | None:
    """Rows visible in `table` at `level` for `tenant`; None when access is refused."""
    with psycopg.connect(pg.app) as conn:
        conn.execute("select set_config('role', %s, false), set_config('app.tenant_id', %s, false)",
                     (level.value, str(tenant) if tenant else ""))
        try:
            row = conn.execute(sql.SQL("select count(*) from dentbook.{}").format(
                sql.Identifier(table))).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            return None
        return int(row[0])


def test_no_tenant_means_zero_rows_in_every_table(pg, clinic):
    for name, _, _ in _tables(pg.owner):
        for level in Level:
            if (name, level) == ("jobs", Level.WORKER):
                continue  # the job runner's one cross-clinic view: the next test
            assert _count_as(pg, level, None, name) in (0, None), (name, level)


def test_the_job_runner_sees_every_clinics_jobs_and_nothing_else(pg, make_clinic):
    a, b = make_clinic(), make_clinic()
    for c in (a, b):
        owner_sql(pg.owner, c.id, "insert into dentbook.jobs (tenant_id, kind, due_at)"
                  " values (%s, 'refund', now() + interval '1 day') returning 1", (c.id,))
    with psycopg.connect(pg.app) as conn:
        conn.execute("select set_config('role', 'dentbook_worker', false)")
        tenants = {r[0] for r in conn.execute("select tenant_id from dentbook.jobs")}
        assert {a.id, b.id} <= tenants
    for name, _, _ in _tables(pg.owner):
        if name != "jobs":
            assert _count_as(pg, Level.WORKER, a.id, name) is None, name  # no access at all
    columns = {r[0] for r in owner_sql(pg.owner, a.id, "select column_name from"
                                       " information_schema.columns where table_schema = 'dentbook'"
                                       " and table_name = 'jobs'")}
    assert not columns & {"patient_name", "patient_email", "patient_phone", "email", "payload"}


def test_staff_level_sees_only_its_clinic_even_without_a_where(pg, make_clinic):
    a, b = make_clinic(), make_clinic()
    with psycopg.connect(pg.owner) as conn:
        conn.execute("set role dentbook_owner")
        for c in (a, b):
            conn.execute("select set_config('app.tenant_id', %s, false)", (str(c.id),))
            conn.execute(
                "insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during,"
                " hold_expires_at, patient_name, patient_email, amount_minor, currency)"
                " values (%s, %s, %s, tstzrange(now() + interval '3 days',"
                " now() + interval '3 days 30 minutes'), now() + interval '1 hour',"
                " 'Pat', 'pat@example.com', 5000, 'pln')",
                (c.id, c.doctors[0], c.visits["short"]))
        conn.commit()
    with psycopg.connect(pg.app) as conn:
        conn.execute("select set_config('role', 'dentbook_staff', false),"
                     " set_config('app.tenant_id', %s, false)", (str(a.id),))
        tenants = {r[0] for r in conn.execute("select tenant_id from dentbook.bookings")}
        assert tenants == {a.id}
        assert conn.execute("select count(*) from dentbook.doctors where tenant_id = %s",
                            (b.id,)).fetchone() == (0,)
        assert [r[0] for r in conn.execute("select slug from dentbook.tenants")] == [a.slug]


@pytest.mark.parametrize("statement", [
    "insert into dentbook.tenants (slug, name) values ('evil', 'Evil')",
    "update dentbook.bookings set status = 'confirmed'",
    "delete from dentbook.bookings",
    "update dentbook.doctors set name = 'x'",
    "select * from dentbook.staff_accounts",
])
def test_staff_level_cannot_write_or_read_secrets(pg, clinic, statement):
    with psycopg.connect(pg.app) as conn:
        conn.execute("select set_config('role', 'dentbook_staff', false),"
                     " set_config('app.tenant_id', %s, false)", (str(clinic.id),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_a_booking_cannot_point_at_another_clinics_doctor(pg, make_clinic):
    a, b = make_clinic(), make_clinic()
    with psycopg.connect(pg.owner) as conn:
        conn.execute("set role dentbook_owner")
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(a.id),))
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during,"
                " hold_expires_at, patient_name, patient_email, amount_minor, currency)"
                " values (%s, %s, %s, tstzrange(now(), now() + interval '30 minutes'),"
                " now(), 'P', 'p@example.com', 5000, 'pln')",
                (a.id, b.doctors[0], a.visits["short"]))


def test_owner_functions_see_nothing_of_another_clinic(pg, make_clinic):
    a, b = make_clinic(), make_clinic()
    with psycopg.connect(pg.app) as conn:
        conn.execute("select set_config('role', 'dentbook_anon', false),"
                     " set_config('app.tenant_id', %s, false)", (str(a.id),))
        doctors = {r[0] for r in conn.execute("select id from dentbook.public_doctors()")}
        assert doctors == set(a.doctors)
        assert conn.execute("select count(*) from dentbook.public_working_hours(%s)",
                            (b.doctors[0],)).fetchone() == (0,)


def test_anonymous_level_cannot_call_service_functions(pg, clinic):
    with psycopg.connect(pg.app) as conn:
        conn.execute("select set_config('role', 'dentbook_anon', false)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select dentbook.release_hold(gen_random_uuid(), 'x')")


def test_audit_trail_is_append_only(pg, clinic):
    with psycopg.connect(pg.owner) as conn:
        conn.execute("set role dentbook_owner")
        with pytest.raises(psycopg.DatabaseError) as refused:
            conn.execute("delete from dentbook.audit_log")
        assert refused.value.sqlstate == "DBK09"
