"""The clinic's privacy notice (GDPR Art. 13): the default text filled from the clinic's
details, in Polish and English; versions an admin saves (earlier ones kept and shown); the
booking form's link; and each booking recording the version in force when it was made."""

from __future__ import annotations

import html
import re

from helpers import book, free_starts, next_week, owner_sql
from privacy_helpers import admin_client, token_of
from staff_helpers import add_staff, login_token, signed_in


def _details(pg, clinic):
    owner_sql(pg.owner, clinic.id,
              "update dentbook.tenants set address = 'ul. Zębowa 7, 00-950 Warszawa',"
              " phone = '+48 22 111 22 33', email = 'biuro@zeby.example', retention_years = 5,"
              " unpaid_erasure_days = 9 where id = %s returning 1", (clinic.id,))


def test_default_notice_names_the_controller_bases_recipients_retention_rights_and_uodo(
        client, pg, clinic):
    _details(pg, clinic)
    pl = client.get(f"/{clinic.slug}/privacy", params={"lang": "pl"})
    assert pl.status_code == 200 and 'data-privacy-version="0"' in pl.text
    text = html.unescape(pl.text)
    for words in (f"Test {clinic.slug}", "ul. Zębowa 7, 00-950 Warszawa", "+48 22 111 22 33",
                  "biuro@zeby.example", "art. 6 ust. 1 lit. b", "art. 9 ust. 2 lit. h",
                  "art. 6 ust. 1 lit. c", "Stripe", "poczty e-mail", "po 9 dniach", "po 5 latach",
                  "sprostowania", "usunięcia", "ograniczenia", "przenoszenia", "sprzeciwu",
                  "skargę", "Prezesa Urzędu Ochrony Danych Osobowych", "ul. Stawki 2",
                  "00-193 Warszawa"):
        assert words in text, words
    en = html.unescape(client.get(f"/{clinic.slug}/privacy", params={"lang": "en"}).text)
    for words in ("controller of your personal data", "Art. 6(1)(b)", "Art. 9(2)(h)",
                  "Art. 6(1)(c)", "payment processor", "e-mail provider", "9 days", "5 years",
                  "rectified", "erased", "restrict", "portability", "object",
                  "complaint", "ul. Stawki 2, 00-193 Warszawa"):
        assert words in en, words


def test_the_booking_form_links_to_the_notice(client, clinic):
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    start = free_starts(client, clinic.slug, doctor, visit, next_week(client, clinic.slug))[0]
    page = client.get(f"/{clinic.slug}", params={"doctor": str(doctor), "visit": str(visit),
                                                 "start": start})
    assert re.search(rf'<a href="/{clinic.slug}/privacy" data-privacy-link>', page.text)


def test_an_admin_saves_versions_old_ones_stay_and_bookings_record_the_one_in_force(
        client, server, pg, clinic):
    r, _ = book(client, clinic, email="before@example.com")
    assert r.status_code == 303
    with admin_client(server, pg, clinic) as admin:
        editor = admin.get(f"/{clinic.slug}/staff/settings/privacy")
        assert editor.status_code == 200 and editor.headers["cache-control"] == "no-store"
        # The editor starts from the default text, in both languages.
        assert "Prezes Urzędu Ochrony Danych Osobowych" in html.unescape(editor.text)
        token = token_of(admin, f"/{clinic.slug}/staff/settings/privacy")
        saved = admin.post(f"/{clinic.slug}/staff/settings/privacy", data={
            "_csrf_token": token, "body_pl": "# Pierwsza\r\n\r\nTekst <b>pierwszy</b>.",
            "body_en": "# First\n\nFirst text."})
        assert saved.status_code == 303
        r2, _ = book(client, clinic, email="after@example.com", index=1)
        assert r2.status_code == 303
        second = admin.post(f"/{clinic.slug}/staff/settings/privacy", data={
            "_csrf_token": token, "body_pl": "# Druga\n\n- punkt a\n- punkt b",
            "body_en": "# Second\n\n- point a\n- point b"})
        assert second.status_code == 303
        bad = admin.post(f"/{clinic.slug}/staff/settings/privacy", data={
            "_csrf_token": token, "body_pl": "", "body_en": "x" * 20001})
        assert bad.status_code == 422 and 'data-field-error="body_pl"' in bad.text
        assert 'data-field-error="body_en"' in bad.text

    current = client.get(f"/{clinic.slug}/privacy", params={"lang": "pl"})
    assert 'data-privacy-version="2"' in current.text
    assert "<h2>Druga</h2>" in current.text and "<li>punkt b</li>" in current.text
    first = client.get(f"/{clinic.slug}/privacy", params={"version": "1", "lang": "pl"})
    assert first.status_code == 200 and 'data-privacy-version="1"' in first.text
    assert "Tekst &lt;b&gt;pierwszy&lt;/b&gt;." in first.text  # escaped, never markup
    english = client.get(f"/{clinic.slug}/privacy", params={"version": "1", "lang": "en"})
    assert "<h2>First</h2>" in english.text
    default = client.get(f"/{clinic.slug}/privacy", params={"version": "0"})
    assert 'data-privacy-version="0"' in default.text
    for bad_version in ("3", "-1", "x", "99999999999"):
        assert client.get(f"/{clinic.slug}/privacy",
                          params={"version": bad_version}).status_code in (400, 404), bad_version

    versions = dict(owner_sql(pg.owner, clinic.id,
                              "select patient_email, privacy_version from dentbook.bookings"
                              " where patient_email in ('before@example.com', 'after@example.com')"))
    assert versions == {"before@example.com": 0, "after@example.com": 1}
    audit = owner_sql(pg.owner, clinic.id, "select after from dentbook.audit_log"
                      " where action = 'privacy_notice' order by id")
    assert [a[0] for a in audit] == [{"version": 1}, {"version": 2}]


def test_only_admins_edit_the_notice(client, pg, clinic):
    anonymous = client.get(f"/{clinic.slug}/staff/settings/privacy")
    assert anonymous.status_code == 303 and anonymous.headers["location"].endswith("/staff/login")
    signed_in(client, clinic.slug, add_staff(pg, clinic, role="viewer"))
    assert client.get(f"/{clinic.slug}/staff/settings/privacy").status_code == 403
    token = login_token(client, clinic.slug)
    r = client.post(f"/{clinic.slug}/staff/settings/privacy",
                    data={"_csrf_token": token, "body_pl": "x", "body_en": "y"})
    assert r.status_code == 403 and 'data-error="forbidden"' in r.text
    assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.privacy_notices") == [(0,)]


def test_one_day_and_one_year_read_right_and_no_contact_points_to_reception(client, pg, clinic):
    owner_sql(pg.owner, clinic.id, "update dentbook.tenants set retention_years = 1,"
              " unpaid_erasure_days = 1 where id = %s returning 1", (clinic.id,))
    pl = html.unescape(client.get(f"/{clinic.slug}/privacy", params={"lang": "pl"}).text)
    assert "po 1 dniu" in pl and "po roku od wizyty" in pl and "w recepcji kliniki" in pl
    en = html.unescape(client.get(f"/{clinic.slug}/privacy", params={"lang": "en"}).text)
    assert "erased 1 day after" in en and "anonymised 1 year after" in en
