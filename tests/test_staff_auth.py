"""Staff sign-in over real HTTP: argon2id passwords, server-side sessions that expire and
end, CSRF on both forms, throttling that engages and lifts, and no way to tell an unknown
e-mail from a wrong password."""

from __future__ import annotations

import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from argon2 import PasswordHasher

from dentbook import passwords
from dentbook.staff import COOKIE
from helpers import Server, SseClient, app_settings, owner_sql, wait_for
from staff_helpers import (
    CSRF,
    PASSWORD,
    add_staff,
    digest,
    login_token,
    sessions,
    shift_failures,
    shift_session,
    sign_in,
    signed_in,
)


def _dashboard(client: httpx.Client, slug: str, token: str | None = None) -> httpx.Response:
    if token is not None:
        client.cookies.set(COOKIE, token)
    return client.get(f"/{slug}/staff")


def _is_login_redirect(r: httpx.Response, slug: str) -> bool:
    return r.status_code == 303 and r.headers["location"] == f"/{slug}/staff/login"


def test_sign_in_sets_a_session_cookie_and_opens_the_dashboard(client, pg, clinic):
    email = add_staff(pg, clinic)
    r = sign_in(client, clinic.slug, email.upper())  # e-mail is case-insensitive
    assert r.status_code == 303 and r.headers["location"] == f"/{clinic.slug}/staff"
    cookie = next(v for k, v in r.headers.multi_items()
                  if k == "set-cookie" and v.startswith(COOKIE + "="))
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite"} <= attrs and "secure" not in attrs
    assert f"Path=/{clinic.slug}/staff;" in cookie + ";" and "samesite=lax" in cookie.lower()
    token = client.cookies[COOKIE]
    assert len(token) >= 43  # ≥ 256 random bits, urlsafe
    assert sessions(pg, clinic) == [digest(token)]  # only the hash is stored
    page = client.get(f"/{clinic.slug}/staff")
    assert page.status_code == 200
    assert email in page.text and 'id="appointments"' in page.text
    assert page.headers["cache-control"] == "no-store"
    again = client.get(f"/{clinic.slug}/staff/login")
    assert again.status_code == 303 and again.headers["location"] == f"/{clinic.slug}/staff"


def test_secure_cookie_when_configured(pg, clinic):
    app = Server(app_settings(pg, secure_cookies="true")).start()
    try:
        email = add_staff(pg, clinic)
        with httpx.Client(base_url=app.url) as c:
            # The CSRF cookie is Secure too, so a plain-HTTP client must carry it by hand.
            page = c.get(f"/{clinic.slug}/staff/login")
            token = CSRF.search(page.text).group(1)
            r = c.post(f"/{clinic.slug}/staff/login",
                       headers={"cookie": f"csrftoken={page.cookies['csrftoken']}"},
                       data={"email": email, "password": PASSWORD, "_csrf_token": token})
        assert r.status_code == 303
        cookie = next(v for k, v in r.headers.multi_items()
                      if k == "set-cookie" and v.startswith(COOKIE + "="))
        assert "Secure" in cookie and "HttpOnly" in cookie
    finally:
        app.stop()


def test_every_sign_in_gets_a_new_id_and_drops_the_old_session(client, pg, clinic):
    email = add_staff(pg, clinic)
    first = signed_in(client, clinic.slug, email)
    second = signed_in(client, clinic.slug, email)
    assert second != first
    assert sessions(pg, clinic) == [digest(second)]
    assert _is_login_redirect(_dashboard(client, clinic.slug, first), clinic.slug)


def test_not_signed_in_forged_or_malformed_cookies_go_to_the_login_page(client, pg, clinic):
    assert _is_login_redirect(client.get(f"/{clinic.slug}/staff"), clinic.slug)
    add_staff(pg, clinic)
    for forged in ("A" * 43, "x", "%27%3B%20drop%20table", "A" * 4000):
        client.cookies.clear()
        r = client.get(f"/{clinic.slug}/staff", headers={"cookie": f"{COOKIE}={forged}"})
        assert _is_login_redirect(r, clinic.slug), forged
    # Filters are not even looked at before the session is.
    r = client.get(f"/{clinic.slug}/staff", params={"day": "not-a-day"})
    assert _is_login_redirect(r, clinic.slug)


def test_sign_out_ends_the_session_for_good(client, pg, clinic):
    email = add_staff(pg, clinic)
    token = signed_in(client, clinic.slug, email)
    out = client.post(f"/{clinic.slug}/staff/logout",
                      data={"_csrf_token": login_token(client, clinic.slug)})
    assert out.status_code == 303 and out.headers["location"] == f"/{clinic.slug}/staff/login"
    cleared = next(v for k, v in out.headers.multi_items()
                   if k == "set-cookie" and v.startswith(COOKIE + "="))
    assert "Max-Age=0" in cleared
    assert sessions(pg, clinic) == []
    assert _is_login_redirect(_dashboard(client, clinic.slug, token), clinic.slug)


def test_both_forms_refuse_a_missing_or_wrong_csrf_token(client, pg, clinic):
    email = add_staff(pg, clinic)
    token = signed_in(client, clinic.slug, email)
    good = login_token(client, clinic.slug)
    for data in ({}, {"_csrf_token": "forged"}, {"_csrf_token": good[:-4] + "AAAA"}):
        r = client.post(f"/{clinic.slug}/staff/logout", data=data)
        assert r.status_code == 403 and 'data-error="csrf"' in r.text
        # The sign-in form checks its token itself and answers with the form again.
        r = client.post(f"/{clinic.slug}/staff/login",
                        data={"email": email, "password": PASSWORD, **data})
        assert r.status_code == 403 and 'data-error="form_expired"' in r.text
    # Nothing changed: the session is the same one and still valid, no new one started.
    assert sessions(pg, clinic) == [digest(token)]
    assert _dashboard(client, clinic.slug).status_code == 200


def test_idle_session_expires_and_use_keeps_it_alive(client, pg, clinic, server):
    email = add_staff(pg, clinic)
    token = signed_in(client, clinic.slug, email)
    idle = server.settings.staff_idle_minutes
    shift_session(pg, clinic, token, "last_seen_at", f"{idle - 5} minutes")
    assert _dashboard(client, clinic.slug).status_code == 200  # refreshed on use
    shift_session(pg, clinic, token, "last_seen_at", f"{idle - 5} minutes")
    assert _dashboard(client, clinic.slug).status_code == 200
    shift_session(pg, clinic, token, "last_seen_at", f"{idle} minutes 1 second")
    assert _is_login_redirect(_dashboard(client, clinic.slug), clinic.slug)
    assert sessions(pg, clinic) == []  # a lapsed session is deleted, not kept


def test_absolute_limit_ends_even_a_busy_session(client, pg, clinic, server):
    email = add_staff(pg, clinic)
    token = signed_in(client, clinic.slug, email)
    row = owner_sql(pg.owner, clinic.id, "select expires_at - created_at from"
                    " dentbook.staff_sessions where id_hash = %s", (digest(token),))
    assert row[0][0].total_seconds() == server.settings.staff_session_hours * 3600
    shift_session(pg, clinic, token, "expires_at", f"{server.settings.staff_session_hours} hours")
    assert _is_login_redirect(_dashboard(client, clinic.slug), clinic.slug)


def test_unknown_email_and_wrong_password_look_and_take_the_same(client, pg, clinic):
    email = add_staff(pg, clinic)
    timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
    bodies: dict[str, str] = {}
    for i in range(4):  # under the per-account limit of 5
        for kind in ("unknown", "wrong"):
            who = f"nobody-{uuid.uuid4().hex[:8]}@example.test" if kind == "unknown" else email
            token = login_token(client, clinic.slug)
            began = time.perf_counter()
            r = client.post(f"/{clinic.slug}/staff/login",
                            data={"email": who, "password": f"wrong-{i}", "_csrf_token": token})
            timings[kind].append(time.perf_counter() - began)
            assert r.status_code == 403 and 'data-error="login_failed"' in r.text
            bodies[kind] = r.text.replace(who, "EMAIL")
    assert bodies["unknown"] == bodies["wrong"]
    ratio = statistics.median(timings["unknown"]) / statistics.median(timings["wrong"])
    # Without the dummy verification an unknown e-mail answers ~10x faster.
    assert 0.5 < ratio < 2.0, timings
    assert COOKIE not in client.cookies


def test_account_of_another_clinic_fails_like_a_wrong_password(client, pg, make_clinic):
    a, b = make_clinic(), make_clinic()
    email = add_staff(pg, a)
    here = sign_in(client, b.slug, email)
    wrong = sign_in(client, b.slug, add_staff(pg, b, email=email.replace("staff", "other")), "nope")
    assert here.status_code == wrong.status_code == 403
    assert 'data-error="login_failed"' in here.text
    assert sessions(pg, b) == [] and COOKIE not in client.cookies


def test_invalid_form_input_is_422_with_field_errors(client, clinic):
    token = login_token(client, clinic.slug)
    r = client.post(f"/{clinic.slug}/staff/login", data={"email": "", "password": "",
                                                         "_csrf_token": token})
    assert r.status_code == 422
    assert 'data-field-error="email"' in r.text and 'data-field-error="password"' in r.text
    r = client.post(f"/{clinic.slug}/staff/login", data={"email": "no-at-sign", "password": "x",
                                                         "_csrf_token": token})
    assert r.status_code == 422 and 'data-field-error="email"' in r.text


def test_unknown_clinic_is_404(client):
    assert client.get("/no-such-clinic-here/staff/login").status_code == 404
    assert client.get("/no-such-clinic-here/staff").status_code == 404


def test_throttling_per_account_engages_and_lifts(client, pg, clinic, server):
    email = add_staff(pg, clinic)
    limit = server.settings.staff_login_max_failures
    for _ in range(limit):
        assert sign_in(client, clinic.slug, email, "wrong").status_code == 403
    # Even the right password is refused now, in the patient's language, with Retry-After.
    r = sign_in(client, clinic.slug, email, lang="en")
    assert r.status_code == 429 and 'data-error="login_throttled"' in r.text
    assert "Too many failed sign-in attempts" in r.text
    window = server.settings.staff_login_window_minutes * 60
    assert 0 < int(r.headers["retry-after"]) <= window
    assert COOKIE not in client.cookies
    # Another account at the same clinic is not affected.
    other = add_staff(pg, clinic)
    assert sign_in(client, clinic.slug, other).status_code == 303
    shift_failures(pg, clinic, f"{window} seconds")
    assert sign_in(client, clinic.slug, email).status_code == 303
    failures = owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.login_failures"
                         " where email = %s and at > now() - interval '1 day'", (email,))
    assert failures == [(0,)]  # forgotten after a successful sign-in


def test_throttling_per_client_address(client, pg, clinic, server):
    email = add_staff(pg, clinic)
    for _ in range(server.settings.staff_login_max_failures_per_ip):
        r = sign_in(client, clinic.slug, f"guess-{uuid.uuid4().hex[:8]}@example.test", "guess")
        assert r.status_code == 403
    r = sign_in(client, clinic.slug, email)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    shift_failures(pg, clinic, f"{server.settings.staff_login_window_minutes} minutes")
    assert sign_in(client, clinic.slug, email).status_code == 303


def test_an_old_hash_is_upgraded_at_sign_in(client, pg, clinic):
    email = add_staff(pg, clinic)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    owner_sql(pg.owner, clinic.id, "update dentbook.staff_accounts set password_hash = %s"
              " where email = %s returning 1", (weak, email))
    assert passwords.needs_rehash(weak)
    assert sign_in(client, clinic.slug, email).status_code == 303
    stored = owner_sql(pg.owner, clinic.id, "select password_hash from dentbook.staff_accounts"
                       " where email = %s", (email,))[0][0]
    assert stored != weak and stored.startswith("$argon2id$")
    assert not passwords.needs_rehash(stored) and passwords.verify(stored, PASSWORD)


def _from(server, address: str) -> httpx.Client:
    """A client connecting from another loopback address: a different client address."""
    return httpx.Client(base_url=server.url, timeout=60,
                        transport=httpx.HTTPTransport(local_address=address))


def test_concurrent_guesses_are_all_counted(pg, clinic, server):
    email = add_staff(pg, clinic)
    limit = server.settings.staff_login_max_failures
    clients = [_from(server, "127.0.0.3") for _ in range(30)]
    try:
        tokens = [login_token(c, clinic.slug) for c in clients]

        def guess(i: int) -> int:
            return clients[i].post(f"/{clinic.slug}/staff/login", data={
                "email": email, "password": f"wrong-{i}", "_csrf_token": tokens[i]}).status_code

        with ThreadPoolExecutor(30) as pool:
            answers = sorted(pool.map(guess, range(30)))
    finally:
        for c in clients:
            c.close()
    # Only `limit` passwords were ever checked; every other guess was refused unevaluated.
    assert answers == [403] * limit + [429] * (30 - limit)
    counted = owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.login_failures"
                        " where email = %s", (email,))
    assert counted == [(limit,)]


def test_a_stranger_cannot_lock_the_real_person_out_but_the_account_has_a_ceiling(pg, clinic):
    email = add_staff(pg, clinic)
    server = Server(app_settings(pg, staff_login_max_failures=3,
                                 staff_login_max_failures_per_account=7)).start()
    try:
        with _from(server, "127.0.0.4") as stranger, _from(server, "127.0.0.5") as owner:
            for _ in range(3):
                assert sign_in(stranger, clinic.slug, email, "guess").status_code == 403
            assert sign_in(stranger, clinic.slug, email, "guess").status_code == 429
            # the real person, from their own address, is not locked out, and their success
            # does not give the stranger's address its guesses back
            assert sign_in(owner, clinic.slug, email).status_code == 303
            assert sign_in(stranger, clinic.slug, email, "guess").status_code == 429
            for address in ("127.0.0.6", "127.0.0.7", "127.0.0.8"):
                with _from(server, address) as other:
                    for _ in range(3):
                        sign_in(other, clinic.slug, email, "guess")
            # 3 + 9 failures from anywhere: the account-wide ceiling (7) holds for everyone
            with _from(server, "127.0.0.9") as fresh:
                r = sign_in(fresh, clinic.slug, email)
                assert r.status_code == 429 and 'data-error="login_throttled"' in r.text
    finally:
        server.stop()


def test_two_clinics_two_sessions_and_signing_out_of_one_ends_only_it(client, pg, make_clinic):
    a, b = make_clinic(), make_clinic()
    signed_in(client, b.slug, add_staff(pg, b))
    signed_in(client, a.slug, add_staff(pg, a))  # the browser now holds one cookie per clinic
    assert len(sessions(pg, a)) == 1 and len(sessions(pg, b)) == 1
    assert client.get(f"/{b.slug}/staff").status_code == 200
    r = client.post(f"/{a.slug}/staff/logout", data={"_csrf_token": login_token(client, a.slug)})
    assert r.status_code == 303
    assert sessions(pg, a) == [] and len(sessions(pg, b)) == 1
    assert client.get(f"/{b.slug}/staff").status_code == 200  # still signed in at B
    r = client.post(f"/{b.slug}/staff/logout", data={"_csrf_token": login_token(client, b.slug)})
    assert r.status_code == 303 and sessions(pg, b) == []
    assert _is_login_redirect(client.get(f"/{b.slug}/staff"), b.slug)


def test_signing_out_ends_the_sessions_live_stream(client, pg, clinic, server):
    token = signed_in(client, clinic.slug, add_staff(pg, clinic))
    other = signed_in(httpx.Client(base_url=server.url), clinic.slug, add_staff(pg, clinic))
    mine = SseClient(f"{server.url}/{clinic.slug}/staff/events",
                     headers={"Cookie": f"{COOKIE}={token}"})
    theirs = SseClient(f"{server.url}/{clinic.slug}/staff/events",
                       headers={"Cookie": f"{COOKIE}={other}"})
    try:
        wait_for(lambda: mine.messages and theirs.messages, what="both streams open")
        r = client.post(f"/{clinic.slug}/staff/logout",
                        data={"_csrf_token": login_token(client, clinic.slug)})
        assert r.status_code == 303
        wait_for(lambda: mine.finished, timeout=10, what="the signed-out stream to end")
        assert not theirs.finished  # another session's stream goes on
    finally:
        mine.close()
        theirs.close()


def _audit(pg, clinic, email):
    return owner_sql(pg.owner, clinic.id,
                     "select l.action, l.detail, l.actor from dentbook.audit_log l"
                     " join dentbook.staff_accounts a on a.id = l.staff_id where a.email = %s"
                     " order by l.id", (email,))


def test_sign_ins_and_sign_outs_are_in_the_audit_log(client, pg, clinic):
    email = add_staff(pg, clinic)
    assert sign_in(client, clinic.slug, email, "wrong").status_code == 403
    signed_in(client, clinic.slug, email)
    client.post(f"/{clinic.slug}/staff/logout", data={"_csrf_token": login_token(client, clinic.slug)})
    assert _audit(pg, clinic, email) == [("signin", "password", "staff"),
                                         ("signout", "this session", "staff")]


def test_sign_out_of_all_sessions_ends_every_one_and_their_streams(client, pg, clinic, server):
    email, other = add_staff(pg, clinic), add_staff(pg, clinic)
    here = signed_in(client, clinic.slug, email)
    with httpx.Client(base_url=server.url) as laptop, httpx.Client(base_url=server.url) as colleague:
        there = signed_in(laptop, clinic.slug, email)
        theirs = signed_in(colleague, clinic.slug, other)
        stream = SseClient(f"{server.url}/{clinic.slug}/staff/events",
                           headers={"Cookie": f"{COOKIE}={there}"})
        try:
            wait_for(lambda: stream.messages, what="the stream open")
            page = client.get(f"/{clinic.slug}/staff/account/2fa")
            assert "data-signout-all" in page.text
            r = client.post(f"/{clinic.slug}/staff/account/signout-all",
                            data={"_csrf_token": login_token(client, clinic.slug)})
            assert r.status_code == 303 and r.headers["location"] == f"/{clinic.slug}/staff/login"
            assert any(k == "set-cookie" and v.startswith(COOKIE + "=") and "Max-Age=0" in v
                       for k, v in r.headers.multi_items())
            wait_for(lambda: stream.finished, timeout=10, what="the other session's stream to end")
        finally:
            stream.close()
        assert sessions(pg, clinic) == [digest(theirs)]
        for c, token in ((client, here), (laptop, there)):
            assert _is_login_redirect(_dashboard(c, clinic.slug, token), clinic.slug)
        assert colleague.get(f"/{clinic.slug}/staff").status_code == 200
    assert ("signout", "all sessions (2)", "staff") in _audit(pg, clinic, email)


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for k, v in response.headers.multi_items() if k == "set-cookie"}


def test_every_cookie_is_secure_on_https_behind_a_trusted_proxy(pg, clinic):
    email = add_staff(pg, clinic)
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.20"}
    app = Server(app_settings(pg, trusted_proxies="127.0.0.0/8")).start()
    try:
        with httpx.Client(base_url=app.url) as c:
            page = c.get(f"/{clinic.slug}/staff/login", params={"lang": "en"}, headers=https)
            cookies = _set_cookies(page)
            assert {"csrftoken", "lang"} <= set(cookies)
            assert all("; Secure" in v for v in cookies.values()), cookies
            token = CSRF.search(page.text).group(1)
            r = c.post(f"/{clinic.slug}/staff/login", headers={
                **https, "cookie": f"csrftoken={page.cookies['csrftoken']}"},
                data={"email": email, "password": PASSWORD, "_csrf_token": token})
            assert r.status_code == 303
            assert "; Secure" in _set_cookies(r)[COOKIE]
            # Plain HTTP through the same proxy: not Secure (the browser could not send them).
            plain = _set_cookies(c.get(f"/{clinic.slug}/staff/login", params={"lang": "pl"},
                                       headers={"X-Forwarded-Proto": "http"}))
            assert plain and not any("Secure" in v for v in plain.values()), plain
    finally:
        app.stop()
    # From a peer that is not a trusted proxy the header is anyone's word: ignored.
    app = Server(app_settings(pg, trusted_proxies="10.0.0.0/8")).start()
    try:
        with httpx.Client(base_url=app.url) as c:
            spoofed = _set_cookies(c.get(f"/{clinic.slug}/staff/login", headers=https))
            assert "csrftoken" in spoofed and "Secure" not in spoofed["csrftoken"]
    finally:
        app.stop()
