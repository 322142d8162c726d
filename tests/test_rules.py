"""One rule for slugs and addresses (dentbook.rules) in the web forms, the operator's
commands and the database."""

from __future__ import annotations

import psycopg
import pytest

from dentbook import admin, rules


def test_the_databases_slug_check_is_the_rules_pattern(pg):
    with psycopg.connect(pg.owner) as conn:
        [(definition,)] = conn.execute(
            "select pg_get_constraintdef(c.oid) from pg_constraint c"
            " where c.conrelid = 'dentbook.tenants'::regclass and c.contype = 'c'"
            " and pg_get_constraintdef(c.oid) like '%%slug%%'").fetchall()
    assert f"'{rules.SLUG_PATTERN}'" in definition


@pytest.mark.parametrize("slug", sorted(rules.RESERVED_SLUGS | {"-a", "A", "a" * 51, "ą"}))
def test_the_operator_cannot_make_a_clinic_the_app_could_not_serve(pg, slug):
    with pytest.raises(admin.AdminError, match="slug"):
        admin.add_clinic(pg.owner, slug, "Unreachable")


@pytest.mark.parametrize("email", ["a@b.c", "zero\u200bwidth@example.com", "two@@example.com",
                                   "no-domain@", "x" * 65 + "@example.com"])
def test_the_operator_cannot_make_an_account_that_could_never_sign_in(pg, email):
    assert not rules.valid_email(email)
    with pytest.raises(admin.AdminError, match="not an e-mail address"):
        admin.add_staff(pg.owner, "klinika-alfa", email, "long enough")
