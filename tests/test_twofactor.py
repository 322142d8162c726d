"""Two-factor sign-in over real HTTP with real pyotp codes: enrolment (QR code, secret,
confirmation, ten recovery codes shown once and stored hashed), the sign-in's second step,
replays refused, recovery codes used once, codes throttled like passwords, turning it off,
and a clinic that requires it of its admins."""

from __future__ import annotations

import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp

from dentbook import demo, totp
from dentbook.staff import CHALLENGE_COOKIE, COOKIE
from helpers import owner_sql
from privacy_helpers import make_admin
from staff_helpers import add_staff, login_token, sessions, shift_failures, sign_in, signed_in

SECRET = re.compile(r"<code data-totp-secret>([A-Z2-7]+)</code>")
CODES = re.compile(r"<li><code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code></li>")


def _code(secret: str, steps: int = 0) -> str:
    """The code of the time step `steps` after the current one (a real pyotp code)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def _wrong(secret: str, n: int = 1) -> list[str]:
    """`n` six-digit codes that are not valid for any time step near now."""
    near = {_code(secret, k) for k in range(-2, 3)}
    return [c for c in (f"{i:06d}" for i in range(n + len(near))) if c not in near][:n]


def _enrol(client: httpx.Client, slug: str) -> tuple[str, list[str], str]:
    """Enrol with a real code: the secret, the recovery codes, and the code used."""
    page = client.get(f"/{slug}/staff/account/2fa")
    assert page.status_code == 200, page.text[-300:]
    secret = SECRET.search(page.text).group(1)
    code = _code(secret)
    r = client.post(f"/{slug}/staff/account/2fa",
                    data={"code": code, "_csrf_token": login_token(client, slug)})
    assert r.status_code == 200 and "data-recovery-codes" in r.text, r.text[-500:]
    return secret, CODES.findall(r.text), code


def _second_step(client: httpx.Client, slug: str, code: str) -> httpx.Response:
    page = client.get(f"/{slug}/staff/login/code")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(f"/{slug}/staff/login/code", data={"code": code, "_csrf_token": token})


def _signout(client: httpx.Client, slug: str) -> None:
    assert client.post(f"/{slug}/staff/logout",
                       data={"_csrf_token": login_token(client, slug)}).status_code == 303


def _actions(pg, clinic, email):
    return owner_sql(pg.owner, clinic.id,
                     "select l.action, l.detail from dentbook.audit_log l"
                     " join dentbook.staff_accounts a on a.id = l.staff_id where a.email = %s"
                     " order by l.id", (email,))


def test_enrol_then_sign_in_with_a_real_code_and_a_replay_is_refused(client, server, pg, clinic):
    email = add_staff(pg, clinic)
    signed_in(client, clinic.slug, email)
    page = client.get(f"/{clinic.slug}/staff/account/2fa")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    svg = re.search(r'<div class="totp">(.*?)</div>', page.text, re.S).group(1)
    assert svg.startswith('<svg role="img"') and "<title>" in svg and "<script" not in svg
    secret = SECRET.search(page.text).group(1)
    # The QR code is the provisioning URI of this secret, this account and this clinic.
    uri = totp.provisioning_uri(secret, email, f"Test {clinic.slug}")
    assert svg == totp.qr_svg(uri, title="Kod QR dla aplikacji uwierzytelniającej")
    assert pyotp.parse_uri(uri).secret == secret
    # A reload shows the secret already scanned, not a new one.
    assert SECRET.search(client.get(f"/{clinic.slug}/staff/account/2fa").text).group(1) == secret
    wrong = client.post(f"/{clinic.slug}/staff/account/2fa",
                        data={"code": _wrong(secret)[0],
                              "_csrf_token": login_token(client, clinic.slug)})
    assert wrong.status_code == 422 and 'data-error="wrong_code"' in wrong.text

    _, codes, enrolled_with = _enrol(client, clinic.slug)
    assert len(codes) == len(set(codes)) == 10
    stored = {r[0] for r in owner_sql(
        pg.owner, clinic.id, "select code_hash from dentbook.staff_recovery_codes r"
        " join dentbook.staff_accounts a on a.id = r.staff_id where a.email = %s", (email,))}
    assert stored == {hashlib.sha256(c.encode()).hexdigest() for c in codes}
    on = client.get(f"/{clinic.slug}/staff/account/2fa")
    assert 'data-2fa="on"' in on.text and secret not in on.text  # never shown again
    _signout(client, clinic.slug)

    # The password alone no longer signs in: it leads to the code step.
    r = sign_in(client, clinic.slug, email)
    assert r.status_code == 303 and r.headers["location"] == f"/{clinic.slug}/staff/login/code"
    challenge = next(v for k, v in r.headers.multi_items()
                     if k == "set-cookie" and v.startswith(CHALLENGE_COOKIE + "="))
    assert "HttpOnly" in challenge and f"Path=/{clinic.slug}/staff" in challenge
    assert COOKIE not in client.cookies and sessions(pg, clinic) == []
    assert client.get(f"/{clinic.slug}/staff").status_code == 303
    # The code used at enrolment (its time step) is spent; the next step's code works.
    assert _second_step(client, clinic.slug, enrolled_with).status_code == 403
    used = _code(secret, 1)
    signed = _second_step(client, clinic.slug, used)
    assert signed.status_code == 303 and signed.headers["location"] == f"/{clinic.slug}/staff"
    assert client.get(f"/{clinic.slug}/staff").status_code == 200
    _signout(client, clinic.slug)

    # The same code again, inside its window: refused.
    assert sign_in(client, clinic.slug, email).status_code == 303
    replay = _second_step(client, clinic.slug, used)
    assert replay.status_code == 403 and 'data-error="wrong_code"' in replay.text
    assert client.get(f"/{clinic.slug}/staff").status_code == 303

    # A recovery code works once (typed loosely), then never again.
    sloppy = codes[3].upper().replace("-", " ")
    assert _second_step(client, clinic.slug, sloppy).status_code == 303
    _signout(client, clinic.slug)
    assert sign_in(client, clinic.slug, email).status_code == 303
    assert _second_step(client, clinic.slug, codes[3]).status_code == 403
    assert _second_step(client, clinic.slug, codes[4]).status_code == 303

    methods = [d for a, d in _actions(pg, clinic, email) if a in ("signin", "second_factor")]
    assert methods == ["password", "turned on", "password and authenticator code",
                       "password and recovery code", "password and recovery code"]


def test_the_same_code_sent_twice_at_once_signs_in_once(pg, clinic, server):
    email = add_staff(pg, clinic)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        signed_in(c, clinic.slug, email)
        secret, _, _ = _enrol(c, clinic.slug)
        _signout(c, clinic.slug)
    clients = [httpx.Client(base_url=server.url, timeout=30) for _ in range(4)]
    try:
        tokens = []
        for c in clients:
            assert sign_in(c, clinic.slug, email).status_code == 303
            page = c.get(f"/{clinic.slug}/staff/login/code")
            tokens.append(re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1))
        code = _code(secret, 1)

        def send(i: int) -> int:
            return clients[i].post(f"/{clinic.slug}/staff/login/code",
                                   data={"code": code, "_csrf_token": tokens[i]}).status_code

        with ThreadPoolExecutor(4) as pool:
            answers = sorted(pool.map(send, range(4)))
    finally:
        for c in clients:
            c.close()
    assert answers == [303, 403, 403, 403]
    assert len(sessions(pg, clinic)) == 1


def test_codes_are_throttled_like_passwords_and_a_password_does_not_reset_the_count(
        client, server, pg, clinic):
    email = add_staff(pg, clinic)
    signed_in(client, clinic.slug, email)
    secret, _, _ = _enrol(client, clinic.slug)
    _signout(client, clinic.slug)
    limit = server.settings.staff_login_max_failures
    assert sign_in(client, clinic.slug, email).status_code == 303
    guesses = _wrong(secret, limit)
    for guess in guesses[:-1]:
        assert _second_step(client, clinic.slug, guess).status_code == 403
    # Entering the password again gives a new challenge, not new guesses.
    assert sign_in(client, clinic.slug, email).status_code == 303
    assert _second_step(client, clinic.slug, guesses[-1]).status_code == 403
    refused = _second_step(client, clinic.slug, _code(secret, 1))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert sessions(pg, clinic) == []
    shift_failures(pg, clinic, f"{server.settings.staff_login_window_minutes} minutes")
    assert _second_step(client, clinic.slug, _code(secret, 1)).status_code == 303


def test_a_late_or_missing_challenge_starts_again(client, pg, clinic):
    email = add_staff(pg, clinic)
    signed_in(client, clinic.slug, email)
    secret, _, _ = _enrol(client, clinic.slug)
    _signout(client, clinic.slug)
    assert client.get(f"/{clinic.slug}/staff/login/code").status_code == 303  # no challenge
    assert sign_in(client, clinic.slug, email).status_code == 303
    owner_sql(pg.owner, clinic.id, "update dentbook.staff_challenges set expires_at = now()"
              " - interval '1 second' returning 1")
    r = _second_step(client, clinic.slug, _code(secret, 1))
    assert r.status_code == 403 and 'data-error="challenge_expired"' in r.text
    assert sessions(pg, clinic) == []


def test_turning_it_off_takes_a_code(client, pg, clinic):
    email = add_staff(pg, clinic)
    signed_in(client, clinic.slug, email)
    _, codes, _ = _enrol(client, clinic.slug)
    token = login_token(client, clinic.slug)
    r = client.post(f"/{clinic.slug}/staff/account/2fa/disable",
                    data={"code": "12345", "_csrf_token": token})
    assert r.status_code == 403 and 'data-error="wrong_code"' in r.text
    r = client.post(f"/{clinic.slug}/staff/account/2fa/disable",
                    data={"code": codes[0], "_csrf_token": token})
    assert r.status_code == 303
    assert owner_sql(pg.owner, clinic.id,
                     "select totp_secret, totp_enabled_at, (select count(*) from"
                     " dentbook.staff_recovery_codes r where r.staff_id = a.id)"
                     " from dentbook.staff_accounts a where email = %s", (email,)) == [(None, None, 0)]
    _signout(client, clinic.slug)
    assert signed_in(client, clinic.slug, email)  # the password alone again
    assert ("second_factor", "turned off") in _actions(pg, clinic, email)


def test_a_clinic_can_require_it_of_admins(client, server, pg, clinic):
    email = make_admin(pg, clinic)
    viewer = add_staff(pg, clinic, role="viewer")
    signed_in(client, clinic.slug, email)
    token = login_token(client, clinic.slug)
    r = client.post(f"/{clinic.slug}/staff/settings/security",
                    data={"required": "true", "_csrf_token": token})
    assert r.status_code == 303
    assert _required(pg, clinic) == [(True,)]
    # Every page but the enrolment now sends the admin to enrol first.
    for path in ("", "/patients", "/settings/privacy", "/settings/security"):
        r = client.get(f"/{clinic.slug}/staff{path}")
        assert r.status_code == 303, path
        assert r.headers["location"] == f"/{clinic.slug}/staff/account/2fa", path
    r = client.get(f"/{clinic.slug}/staff/events")
    assert r.status_code == 401
    enrol = client.get(f"/{clinic.slug}/staff/account/2fa")
    assert enrol.status_code == 200 and "data-totp-secret" in enrol.text
    _enrol(client, clinic.slug)
    assert client.get(f"/{clinic.slug}/staff").status_code == 200
    # A viewer is not asked.
    with httpx.Client(base_url=server.url, timeout=30) as other:
        signed_in(other, clinic.slug, viewer)
        assert other.get(f"/{clinic.slug}/staff").status_code == 200
        assert other.get(f"/{clinic.slug}/staff/settings/security").status_code == 403
    r = client.post(f"/{clinic.slug}/staff/settings/security", data={"_csrf_token": token})
    assert r.status_code == 303
    assert _required(pg, clinic) == [(False,)]
    settings_rows = owner_sql(pg.owner, clinic.id, "select after from dentbook.audit_log"
                              " where action = 'settings' order by id")
    assert [r[0] for r in settings_rows] == [{"admins_need_2fa": True}, {"admins_need_2fa": False}]


def _required(pg, clinic):
    return owner_sql(pg.owner, clinic.id, "select admins_need_2fa from dentbook.tenants"
                     " where id = %s", (clinic.id,))


def test_demo_accounts_are_not_enrolled(pg):
    for slug in demo.CLINICS:
        rows = owner_sql(pg.owner, _clinic_id(pg, slug),
                         "select count(*) from dentbook.staff_accounts where totp_secret is not null"
                         " or totp_enabled_at is not null")
        assert rows == [(0,)], slug


def _clinic_id(pg, slug):
    import psycopg

    with psycopg.connect(pg.owner) as conn:
        return conn.execute("select id from dentbook.tenants where slug = %s", (slug,)).fetchone()[0]
