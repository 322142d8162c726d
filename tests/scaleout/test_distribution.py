"""The schema is ready to be distributed by clinic (sql/schema-8.sql, docs/deploy.md):
every key, unique index, exclusion constraint and foreign key names the clinic, read from
the catalogue; and every notification goes through `dentbook.announce`, whose body a
distributed deployment replaces: here it is replaced by the guide's own recipe (an outbox
table and a relay), a calendar stays live through it, and the original is restored."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from helpers import Server, SseClient, app_settings, free_starts, new_clinic, next_week, owner_sql

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
# The table every clinic table's tenant_id refers to: the distribution key's own table,
# a reference table (replicated to every node) in the plan, so its keys need no tenant_id.
REFERENCE = ("tenants",)

# Constraints and unique indexes of clinic tables, with the positions tenant_id takes in them.
VIOLATIONS = """
with tables as (
    select c.oid, c.relname,
           (select a.attnum from pg_attribute a
            where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped) as tenant_col
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'dentbook' and c.relkind in ('r', 'p') and c.relname <> all (%(reference)s)
)
-- a clinic table without tenant_id, or without a primary key that contains it
select t.relname, 'table', 'no tenant_id column' from tables t where t.tenant_col is null
union all
select t.relname, 'table', 'no primary key containing tenant_id' from tables t
where t.tenant_col is not null and not exists (
    select from pg_constraint k where k.conrelid = t.oid and k.contype = 'p'
    and t.tenant_col = any (k.conkey))
union all
-- primary, unique and exclusion constraints without tenant_id (compared with = if exclusion)
select t.relname, k.conname, pg_get_constraintdef(k.oid)
from tables t join pg_constraint k on k.conrelid = t.oid
where k.contype in ('p', 'u', 'x') and (
    t.tenant_col is null or not (t.tenant_col = any (k.conkey))
    or (k.contype = 'x' and (select o.oprname from pg_operator o
                             where o.oid = k.conexclop[array_position(k.conkey, t.tenant_col)])
                            is distinct from '='))
union all
-- foreign keys: tenant_id on both sides, paired (tenants.id when the target is tenants)
select t.relname, k.conname, pg_get_constraintdef(k.oid)
from tables t join pg_constraint k on k.conrelid = t.oid
where k.contype = 'f' and (
    t.tenant_col is null or not (t.tenant_col = any (k.conkey))
    or (select a.attname from pg_attribute a where a.attrelid = k.confrelid
        and a.attnum = k.confkey[array_position(k.conkey, t.tenant_col)])
       is distinct from (case when k.confrelid = 'dentbook.tenants'::regclass
                              then 'id' else 'tenant_id' end))
union all
-- unique or exclusion indexes made without a constraint (create unique index ...)
select t.relname, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
from tables t join pg_index i on i.indrelid = t.oid
where (i.indisunique or i.indisexclusion)
  and not exists (select from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = t.oid)
  and (t.tenant_col is null or not (t.tenant_col = any (i.indkey::int2[])))
order by 1, 2
"""


def violations(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in conn.execute(VIOLATIONS, {"reference": list(REFERENCE)})]


def test_every_key_and_foreign_key_of_clinic_data_names_the_clinic(pg):
    with psycopg.connect(pg.owner) as conn:
        tables = [r[0] for r in conn.execute(
            "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'dentbook' and relkind in ('r', 'p')")]
        assert len(tables) >= 15  # the rule below is about something
        assert violations(conn) == []
        # The no-overlap constraint keys on the clinic again, with = (schema-8).
        (definition,) = conn.execute("select pg_get_constraintdef(oid) from pg_constraint"
                                     " where conname = 'bookings_no_overlap'").fetchone()
        assert definition.startswith("EXCLUDE USING gist (tenant_id WITH =, doctor_id WITH =,")
        (stats,) = conn.execute("select stxkind from pg_statistic_ext"
                                " where stxname = 'bookings_doctor_clinic'").fetchone()
        assert stats == ["f"]  # functional dependencies


@pytest.mark.parametrize(("ddl", "found"), [
    ("alter table dentbook.doctors add constraint scratch_key unique (id)", "scratch_key"),
    ("create unique index scratch_idx on dentbook.visit_types (id)", "dentbook.scratch_idx"),
    ("alter table dentbook.bookings add constraint scratch_x exclude using gist"
     " (doctor_id with =, during with &&) where (status in ('pending', 'confirmed'))", "scratch_x"),
    ("alter table dentbook.refunds add constraint scratch_fk foreign key (tenant_id, booking_id)"
     " references dentbook.bookings (id, tenant_id) not valid", "scratch_fk"),
    ("create table dentbook.scratch (id uuid primary key)", "table"),
])
def test_the_catalogue_check_finds_each_kind_of_breach(pg, ddl, found):
    """The rule can fail: each kind of breach, made inside a transaction never committed."""
    with psycopg.connect(pg.owner) as conn, conn.transaction(force_rollback=True):
        if "scratch_fk" in ddl:  # a foreign key needs a unique target, mis-paired on purpose
            conn.execute("create unique index scratch_target on dentbook.bookings (id, tenant_id)")
        conn.execute(ddl)
        assert found in [name for _, name, _ in violations(conn)]


def test_only_announce_sends_notifications(pg):
    with psycopg.connect(pg.owner) as conn:
        senders = [r[0] for r in conn.execute(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'dentbook' and p.prosrc ~* 'pg_notify'")]
        callers = {r[0] for r in conn.execute(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'dentbook' and p.prosrc ~* 'announce\\('")}
    assert senders == ["announce"]
    assert {"notify_booking", "notify_clinic", "notify_jobs", "announce_session_end"} <= callers


def guide_sql(marker: str) -> str:
    """The SQL block of docs/deploy.md between `<!-- marker:begin -->` and `:end`."""
    text = GUIDE.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker}:begin -->\s*```sql\n(.*?)```\s*<!-- {marker}:end -->", text, re.S)
    assert found, f"docs/deploy.md has no {marker} block"
    return found.group(1)


@contextmanager
def relayed(pg) -> Iterator[None]:
    """announce() replaced by the guide's recipe for a distributed deployment; then restored."""
    with psycopg.connect(pg.owner, autocommit=True) as conn:
        (original,) = conn.execute(
            "select pg_get_functiondef('dentbook.announce(text, text)'::regprocedure)").fetchone()
        with conn.transaction():
            conn.execute("set local role dentbook_owner")
            conn.execute(guide_sql("relay").encode())
    try:
        yield
    finally:
        with psycopg.connect(pg.owner, autocommit=True) as conn, conn.transaction():
            conn.execute("set local role dentbook_owner")
            conn.execute(original.encode())
            conn.execute("drop schema dentbook_relay cascade")


def _insert_hold(pg, clinic, start: str) -> uuid.UUID:
    begins = datetime.fromisoformat(start.replace("Z", "+00:00"))
    booking = uuid.uuid4()
    owner_sql(pg.owner, clinic.id, """
        insert into dentbook.bookings (tenant_id, id, doctor_id, visit_type_id, during, status,
            hold_expires_at, patient_name, patient_email, amount_minor, currency)
        values (%s, %s, %s, %s, tstzrange(%s, %s), 'pending', now() + interval '30 minutes',
                'Relay Patient', 'relay@example.com', 5000, 'pln')""",
              (clinic.id, booking, clinic.doctors[0], clinic.visits["short"], begins,
               begins + timedelta(minutes=30)))
    return booking


def test_a_replaced_announce_carries_every_notification_through_the_relay(private_pg):
    pg = private_pg
    clinic = new_clinic(pg)
    server = Server(app_settings(pg)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            week = next_week(client, clinic.slug)
            first, second = free_starts(client, clinic.slug, clinic.doctors[0],
                                        clinic.visits["short"], week)[:2]
        sse = SseClient(f"{server.url}/{clinic.slug}/events?doctor={clinic.doctors[0]}"
                        f"&visit={clinic.visits['short']}&week={week}")
        try:
            sse.wait_state(first, "free")
            with relayed(pg):
                booking = _insert_hold(pg, clinic, first)
                owner_sql(pg.owner, clinic.id, "update dentbook.tenants set name = name || ' (x)'")
                with psycopg.connect(pg.owner) as conn:
                    waiting = conn.execute("select channel, payload from dentbook_relay.announcements"
                                           " order by id").fetchall()
                # The notifications reached the table, not the listeners.
                assert [c for c, _ in waiting] == ["dentbook_bookings", "dentbook_clinics"]
                assert str(booking) in waiting[0][1] and waiting[1][1] == str(clinic.id)
                assert sse.state(first) == "free"
                with psycopg.connect(pg.owner, autocommit=True) as conn:
                    (sent,) = conn.execute("select dentbook_relay.relay()").fetchone()
                    (left,) = conn.execute("select count(*) from dentbook_relay.announcements").fetchone()
                assert (sent, left) == (2, 0)
                sse.wait_state(first, "taken")  # through the relay's NOTIFY, as on a coordinator
            # Restored: pg_notify straight from the trigger again, no relay in between.
            _insert_hold(pg, clinic, second)
            sse.wait_state(second, "taken")
        finally:
            sse.close()
    finally:
        server.stop()
