"""`dentbook migrate` is idempotent, records what it applied, and refuses newer schemas."""

from __future__ import annotations

import psycopg
import pytest

from dentbook import demo
from dentbook.migrate import STEPS, MigrationError, check_current, migrate

COUNTS = ("select (select count(*) from dentbook.tenants), (select count(*) from dentbook.doctors),"
          " (select count(*) from dentbook.visit_types), (select count(*) from dentbook.staff_accounts),"
          " (select count(*) from dentbook.working_hours)")


def test_second_migrate_is_a_no_op(pg):
    assert migrate(pg.owner) == []
    with psycopg.connect(pg.owner) as conn:
        names = [r[0] for r in conn.execute("select name from dentbook_meta.migrations order by 1")]
        assert names == sorted(step.name for step in STEPS)
        check_current(conn)


def test_demo_load_is_idempotent(pg):
    with psycopg.connect(pg.owner) as conn:
        before = conn.execute(COUNTS).fetchone()
    demo.load(pg.owner)
    with psycopg.connect(pg.owner) as conn:
        assert conn.execute(COUNTS).fetchone() == before
        slugs = {r[0] for r in conn.execute("select slug from dentbook.tenants")}
    assert set(demo.CLINICS) <= slugs


def test_refuses_a_database_migrated_by_a_newer_version(pg):
    with psycopg.connect(pg.owner) as conn:
        conn.execute("insert into dentbook_meta.migrations (name, checksum) values ('999-future.sql', 'x')")
        conn.commit()
    try:
        with pytest.raises(MigrationError, match="newer dentbook"):
            migrate(pg.owner)
        with psycopg.connect(pg.app) as conn, pytest.raises(MigrationError):
            check_current(conn)
    finally:
        with psycopg.connect(pg.owner) as conn:
            conn.execute("delete from dentbook_meta.migrations where name = '999-future.sql'")


def test_changed_repeatable_step_is_reapplied(pg):
    with psycopg.connect(pg.owner) as conn:
        conn.execute("update dentbook_meta.migrations set checksum = 'old' where name = 'anon.sql'")
        conn.commit()
        with pytest.raises(MigrationError, match="run `dentbook migrate`"):
            check_current(conn)
    assert migrate(pg.owner) == ["anon.sql"]


def test_a_database_of_the_previous_layout_is_brought_up_to_date(pg):
    """Functions once lived in functions.sql: its record is retired, not taken as newer."""
    with psycopg.connect(pg.owner) as conn:
        conn.execute("insert into dentbook_meta.migrations (name, checksum) values ('functions.sql', 'x')")
        conn.execute("update dentbook_meta.migrations set checksum = 'old'"
                     " where name = 'service-booking.sql'")
        conn.commit()
        with pytest.raises(MigrationError, match="run `dentbook migrate`"):
            check_current(conn)
    assert migrate(pg.owner) == ["service-booking.sql"]
    with psycopg.connect(pg.owner) as conn:
        check_current(conn)
        retired = "select from dentbook_meta.migrations where name = 'functions.sql'"
        assert not conn.execute(retired).fetchall()
