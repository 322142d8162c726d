"""Staff accounts as the admin keeps them, over real HTTP: an invitation's one-time
set-password link (only its hash stored; usable once; expired links refused; then a real
sign-in), roles taking effect at once, deactivation ending sessions and sign-ins, and the
clinic never left without an admin — also when two admins demote each other at once."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from admin_helpers import as_staff, field_errors, new_staff, snapshot, staff_session
from dentbook.staff import COOKIE
from helpers import SseClient, owner_sql, wait_for
from staff_helpers import CSRF, sign_in, signed_in

LINK = re.compile(r'id="invite-link" type="text" readonly value="([^"]+)"')


def _invite(who, email: str, role: str = "reception") -> str:
    r = who.post("/staff/invite", {"email": email, "role": role})
    assert r.status_code == 200, r.text[-500:]
    m = LINK.search(r.text)
    assert m, "no link shown"
    assert r.headers["cache-control"] == "no-store"
    return m.group(1)


def _path(link: str) -> str:
    return httpx.URL(link).path


def _set_password(client: httpx.Client, path: str, password: str, again: str | None = None):
    page = client.get(path)
    assert page.status_code == 200, page.text[-400:]
    token = CSRF.search(page.text).group(1)
    return client.post(path, data={"password": password, "password_again": again or password,
                                   "_csrf_token": token})


def test_an_invitation_sets_a_password_once_and_the_new_account_signs_in(server, pg, clinic):
    with staff_session(server, pg, clinic, "admin") as admin:
        link = _invite(admin, "New.Person@Example.test")
        assert link.startswith(server.settings.base_url + f"/{clinic.slug}/staff/invite/")
        token = link.rsplit("/", 1)[1]
        rows = owner_sql(pg.owner, clinic.id,
                         "select role, password_hash, invite_hash, invite_expires_at - now()"
                         " from dentbook.staff_accounts where email = 'new.person@example.test'")
        role, password_hash, invite_hash, valid = rows[0]
        assert role == "reception" and password_hash is None
        assert bytes(invite_hash) == hashlib.sha256(token.encode()).digest()  # only the hash
        assert 71 * 3600 < valid.total_seconds() <= 72 * 3600
        listed = admin.get("/staff").text
        assert "new.person@example.test" in listed and 'data-role="reception"' in listed

    with httpx.Client(base_url=server.url, timeout=30) as invitee:
        path = _path(link)
        # Not yet: an invited account has no password to sign in with.
        assert sign_in(invitee, clinic.slug, "new.person@example.test", "x" * 12).status_code == 403
        page = invitee.get(path)
        assert 'data-invite="form"' in page.text and "new.person@example.test" in page.text
        assert page.headers["cache-control"] == "no-store"
        short = _set_password(invitee, path, "short")
        assert short.status_code == 422 and field_errors(short.text) == {"password"}
        differ = _set_password(invitee, path, "long enough pw", "long enough pX")
        assert differ.status_code == 422 and field_errors(differ.text) == {"password_again"}
        done = _set_password(invitee, path, "the chosen password")
        assert done.status_code == 200 and 'data-invite="done"' in done.text
        # Spent: the link opens nothing any more, GET or POST.
        assert invitee.get(path).status_code == 404
        token = CSRF.search(invitee.get(f"/{clinic.slug}/staff/login").text).group(1)
        again = invitee.post(path, data={"password": "another password", "_csrf_token": token,
                                         "password_again": "another password"})
        assert again.status_code == 404
        welcome = sign_in(invitee, clinic.slug, "new.person@example.test", "the chosen password")
        assert welcome.status_code == 303 and welcome.headers["location"] == f"/{clinic.slug}/staff"
        assert invitee.get(f"/{clinic.slug}/staff").status_code == 200
    hashes = owner_sql(pg.owner, clinic.id, "select invite_hash, invite_expires_at, password_hash"
                       " from dentbook.staff_accounts where email = 'new.person@example.test'")
    assert hashes[0][0] is None and hashes[0][1] is None and hashes[0][2].startswith("$argon2id$")
    actions = owner_sql(pg.owner, clinic.id, "select action from dentbook.audit_log"
                        " where action like 'staff.%%' order by id")
    assert [a for (a,) in actions][-2:] == ["staff.invited", "staff.password_set"]


def test_an_expired_link_is_refused_and_a_new_one_works(server, pg, clinic):
    with staff_session(server, pg, clinic, "admin") as admin:
        link = _invite(admin, "late@example.test", "viewer")
        owner_sql(pg.owner, clinic.id, "update dentbook.staff_accounts set invite_expires_at ="
                  " now() - interval '1 second' where email = 'late@example.test' returning 1")
        with httpx.Client(base_url=server.url, timeout=30) as invitee:
            r = invitee.get(_path(link))
            assert r.status_code == 410 and 'data-error="invite_expired"' in r.text
            token = CSRF.search(invitee.get(f"/{clinic.slug}/staff/login").text).group(1)
            r = invitee.post(_path(link), data={"password": "0123456789", "_csrf_token": token,
                                                "password_again": "0123456789"})
            assert r.status_code == 410
            assert owner_sql(pg.owner, clinic.id, "select password_hash from"
                             " dentbook.staff_accounts where email = 'late@example.test'") == [(None,)]
            # The admin makes a new link; the old one stays dead.
            pending = owner_sql(pg.owner, clinic.id, "select id from dentbook.staff_accounts"
                                " where email = 'late@example.test'")[0][0]
            r = admin.post(f"/staff/{pending}/invite")
            fresh = LINK.search(r.text).group(1)
            assert fresh != link and invitee.get(_path(link)).status_code == 404
            assert _set_password(invitee, _path(fresh), "finally a password").status_code == 200


def test_malformed_unknown_and_other_clinics_links_are_404(server, pg, make_clinic, client):
    here, there = make_clinic(), make_clinic()
    with staff_session(server, pg, there, "admin") as admin:
        link = _invite(admin, "there@example.test")
    token = link.rsplit("/", 1)[1]
    for path in (f"/{here.slug}/staff/invite/{token}", f"/{here.slug}/staff/invite/x",
                 f"/{here.slug}/staff/invite/{'A' * 43}", f"/{here.slug}/staff/invite/{'A' * 500}"):
        assert client.get(path).status_code == 404, path
    assert client.get(f"/{there.slug}/staff/invite/{token}").status_code == 200


def test_invitations_refuse_existing_accounts_and_bad_input(server, pg, clinic):
    with staff_session(server, pg, clinic, "admin") as admin:
        before = snapshot(pg, clinic)
        taken = admin.post("/staff/invite", {"email": admin.email.upper(), "role": "viewer"})
        assert taken.status_code == 422 and field_errors(taken.text) == {"email"}
        assert 'data-field-error="email"' in taken.text
        bad = admin.post("/staff/invite", {"email": "nope", "role": "owner"})
        assert bad.status_code == 422 and field_errors(bad.text) == {"email", "role"}
        assert 'value="nope"' in bad.text  # what was typed is kept
        polish = admin.client.post(f"/{clinic.slug}/staff/settings/staff/invite",
                                   params={"lang": "pl"},
                                   data={"email": "", "role": "viewer", "_csrf_token": admin.token()})
        assert polish.status_code == 422 and "Uzupełnij to pole." in polish.text
        assert snapshot(pg, clinic) == before


def test_a_role_change_applies_at_once(server, pg, clinic):
    with staff_session(server, pg, clinic, "admin") as admin, \
            staff_session(server, pg, clinic, "viewer") as other:
        assert other.get("/").status_code == 403
        assert admin.post(f"/staff/{other.id}/role", {"role": "admin"}).status_code == 303
        assert other.get("/").status_code == 200
        bad = admin.post(f"/staff/{other.id}/role", {"role": "superuser"})
        assert bad.status_code == 422 and 'data-error="invalid_role"' in bad.text


def test_deactivation_ends_sessions_and_sign_ins_until_reactivated(server, pg, clinic):
    with staff_session(server, pg, clinic, "admin") as admin, \
            staff_session(server, pg, clinic, "reception") as other:
        assert other.client.get(f"/{clinic.slug}/staff").status_code == 200
        r = admin.post(f"/staff/{other.id}/deactivate")
        assert r.status_code == 303 and r.headers["location"].endswith("/staff/settings/staff?saved=1")
        sessions = owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.staff_sessions"
                             " where staff_id = %s", (other.id,))
        assert sessions == [(0,)]
        gone = other.client.get(f"/{clinic.slug}/staff")
        assert gone.status_code == 303 and gone.headers["location"] == f"/{clinic.slug}/staff/login"
        assert sign_in(other.client, clinic.slug, other.email).status_code == 403
        assert 'data-active="false"' in admin.get("/staff").text
        assert admin.post(f"/staff/{other.id}/reactivate").status_code == 303
        assert signed_in(other.client, clinic.slug, other.email)


def test_deactivation_ends_the_live_stream_too(server, pg, clinic):
    with staff_session(server, pg, clinic, "admin") as admin, \
            staff_session(server, pg, clinic, "viewer") as other:
        url = f"{server.url}/{clinic.slug}/staff/events"
        theirs = SseClient(url, headers={"Cookie": f"{COOKIE}={other.client.cookies[COOKIE]}"})
        mine = SseClient(url, headers={"Cookie": f"{COOKIE}={admin.client.cookies[COOKIE]}"})
        try:
            wait_for(lambda: mine.messages and theirs.messages, what="both streams open")
            assert admin.post(f"/staff/{other.id}/deactivate").status_code == 303
            wait_for(lambda: theirs.finished, timeout=10, what="the deactivated stream to end")
            assert not mine.finished  # the admin's own stream goes on
        finally:
            mine.close()
            theirs.close()


def test_the_last_admin_can_neither_be_demoted_nor_deactivated(server, pg, clinic):
    with staff_session(server, pg, clinic, "admin") as admin:
        # An invited admin with no password yet does not count: they cannot sign in.
        _invite(admin, "future-admin@example.test", "admin")
        before = snapshot(pg, clinic)
        for path, data in ((f"/staff/{admin.id}/role", {"role": "reception"}),
                           (f"/staff/{admin.id}/deactivate", {})):
            r = admin.post(path, data)
            assert r.status_code == 409 and 'data-error="last_admin"' in r.text, path
        assert snapshot(pg, clinic) == before
        # With a second admin, either may step down.
        _other, other_id = new_staff(pg, clinic, "admin")
        assert admin.post(f"/staff/{admin.id}/role", {"role": "reception"}).status_code == 303
        assert admin.get("/").status_code == 403  # no longer an admin
    admins = owner_sql(pg.owner, clinic.id, "select id from dentbook.staff_accounts"
                       " where role = 'admin' and active and password_hash is not null")
    assert admins == [(other_id,)]


def test_two_admins_demoting_each_other_at_once_leave_one(pg, clinic):
    """Deterministic: the first demotion holds the clinic's admin lock (not committed)
    while the second waits on it; once the first commits, the second finds its own account
    no longer an admin and is refused. Without the lock both would commit: no admin left."""
    _, a = new_staff(pg, clinic, "admin")
    _, b = new_staff(pg, clinic, "admin")
    outcome: dict[str, object] = {}
    with as_staff(pg, clinic, a) as first:
        first.execute("select dentbook.admin_set_role(%s, 'viewer')", (b,))
        pid = first.execute("select pg_backend_pid()").fetchone()[0]

        def second() -> None:
            try:
                with as_staff(pg, clinic, b) as conn:
                    conn.execute("select dentbook.admin_set_role(%s, 'viewer')", (a,))
                outcome["second"] = "committed"
            except psycopg.Error as exc:
                outcome["second"] = exc.sqlstate

        thread = threading.Thread(target=second)
        thread.start()
        with psycopg.connect(pg.owner) as watch:
            while not watch.execute(
                    "select exists (select from pg_locks l join pg_stat_activity s on s.pid = l.pid"
                    " where l.locktype = 'advisory' and not l.granted"
                    " and s.pid <> %s and s.datname = current_database())", (pid,)).fetchone()[0]:
                assert thread.is_alive(), outcome
                time.sleep(0.02)
    thread.join(30)
    assert outcome["second"] == "DBK40"
    roles = dict(owner_sql(pg.owner, clinic.id, "select id, role from dentbook.staff_accounts"
                           " where id = any(%s)", ([a, b],)))
    assert roles == {a: "admin", b: "viewer"}


@pytest.mark.parametrize("round_", range(3))
def test_two_admins_racing_over_http_always_leave_an_admin(server, pg, make_clinic, round_):
    clinic = make_clinic()
    with staff_session(server, pg, clinic, "admin") as a, \
            staff_session(server, pg, clinic, "admin") as b:
        tokens = {a.email: a.token(), b.email: b.token()}
        start = threading.Barrier(2)

        def demote(who, whom):
            start.wait()
            return who.client.post(f"/{clinic.slug}/staff/settings/staff/{whom.id}/deactivate"
                                   if round_ == 1 else
                                   f"/{clinic.slug}/staff/settings/staff/{whom.id}/role",
                                   data={"role": "viewer", "_csrf_token": tokens[who.email]})

        with ThreadPoolExecutor(2) as pool:
            answers = sorted(r.status_code for r in pool.map(demote, (a, b), (b, a)))
    assert answers[0] == 303 and answers[1] in (403, 409), answers
    admins = owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.staff_accounts"
                       " where role = 'admin' and active")
    assert admins == [(1,)]
