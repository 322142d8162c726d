"""The data map: every column of every table has a class, in one place the code reads (the
columns' comments), and erasure can act on what it calls personal."""

from __future__ import annotations

import psycopg

from privacy_helpers import CLASS, columns, data_map


def test_every_column_of_every_table_has_a_valid_class(pg):
    found = columns(pg)
    assert len(found) > 100
    unclassified = [f"{table}.{column} ({comment!r})" for table, column, _, _, _, comment in found
                    if not CLASS.match(comment or "")]
    assert not unclassified, "columns without a class in the data map: " + ", ".join(unclassified)


def test_a_new_column_without_a_class_fails_the_check(pg):
    # The check above reads the catalogue itself: add a column in a transaction and it is
    # caught (rolled back afterwards, so nothing stays).
    with psycopg.connect(pg.owner) as conn:
        conn.execute("alter table dentbook.bookings add column shoe_size integer")
        comment = conn.execute(
            "select col_description('dentbook.bookings'::regclass, attnum) from pg_attribute"
            " where attrelid = 'dentbook.bookings'::regclass and attname = 'shoe_size'").fetchone()
        assert comment == (None,)
        assert conn.execute("select dentbook.column_class('dentbook.bookings', 'shoe_size')"
                            ).fetchone() == (None,)
        conn.rollback()


def test_the_code_reads_the_same_classes(pg):
    with psycopg.connect(pg.owner) as conn:
        for table, cols in data_map(pg).items():
            for column, cls in cols.items():
                got = conn.execute("select dentbook.column_class(%s::regclass, %s)",
                                   (f"dentbook.{table}", column)).fetchone()
                assert got == (cls,), (table, column)


def test_what_names_a_patient_is_personal_and_erasable(pg):
    classes = data_map(pg)
    for column in ("patient_name", "patient_email", "patient_phone", "client_ip", "holder_hash",
                   "note", "email_key", "phone_key"):
        assert classes["bookings"][column] == "personal", column
    assert classes["messages"]["to_address"] == "personal"
    for column in ("amount_minor", "currency", "stripe_payment_intent_id", "stripe_session_id"):
        assert classes["bookings"][column] == "payment", column
    # The audit log never holds personal data: erasure never has to touch an append-only table.
    assert "personal" not in classes["audit_log"].values()
    # Every personal column of a table holding visit data can be nulled (or follows one that can).
    with psycopg.connect(pg.owner) as conn:
        tables = [t for (t,) in conn.execute("select tbl::text from dentbook.visit_tables()")]
    assert {"dentbook.bookings", "dentbook.messages", "dentbook.refunds", "dentbook.audit_log"} <= set(tables)
    for table, column, _, not_null, generated, comment in columns(pg):
        if f"dentbook.{table}" in tables and (comment or "").startswith("class: personal"):
            assert generated or not not_null, f"{table}.{column} is personal but cannot be erased"
