"""Client addresses come from proxy headers only when the peer is a trusted proxy: a header
anyone can send must never choose the address the hold limit counts."""

from __future__ import annotations

import httpx
import pytest

from helpers import (
    Server,
    app_settings,
    csrf_token,
    form,
    free_starts,
    next_week,
)


def _hold(client, clinic, start, i, forwarded):
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    token = csrf_token(client, clinic.slug, doctor, visit, start)
    return client.post(f"/{clinic.slug}/bookings", headers={"X-Forwarded-For": forwarded},
                       data=form(doctor, visit, start, token, email=f"p{i}@example.com"))


@pytest.mark.parametrize(("trusted", "expected"), [
    ("", [303, 303, 429]),            # the header is ignored: one client, limit 2
    ("127.0.0.1", [303, 303, 303]),   # from our proxy: three clients
    ("10.0.0.0/8", [303, 303, 429]),  # a proxy list that does not include the peer
])
def test_forwarded_for_counts_only_from_trusted_proxies(pg, clinic, stripe_local, trusted, expected):
    app = Server(app_settings(pg, max_holds_per_ip=2, trusted_proxies=trusted,
                              **stripe_local.app_settings())).start()
    try:
        with httpx.Client(base_url=app.url, timeout=30) as c:
            starts = free_starts(c, clinic.slug, clinic.doctors[0], clinic.visits["short"],
                                 next_week(c, clinic.slug))
            got = [_hold(c, clinic, starts[i], i, f"203.0.113.{i + 1}").status_code for i in range(3)]
    finally:
        app.stop()
    assert got == expected


def test_settings_refuse_a_malformed_proxy_list(pg):
    from dentbook.settings import SettingsError

    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        app_settings(pg, trusted_proxies="127.0.0.1, not-an-address")
