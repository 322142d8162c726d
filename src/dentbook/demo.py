"""The seed's demo: two clinics, their doctors and visit types, and a staff account for
each role in each (§9: admin, reception, viewer; password `test`).

Loading is idempotent: what exists is left as it is, what is missing is added.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dentbook import admin

CLINICS: dict[str, dict[str, Any]] = {
    "klinika-alfa": {
        "name": "Klinika Alfa",
        "details": ("ul. Świętokrzyska 12, 00-001 Warszawa", "+48 22 123 45 67",
                    "kontakt@alfa.klinika.test"),
        "doctors": ["dr Anna Nowak", "dr Piotr Kowalski"],
        "visits": [("Przegląd", "Check-up", 30, 5000),
                   ("Higienizacja", "Cleaning", 60, 8000),
                   ("Leczenie kanałowe", "Root canal treatment", 90, 15000)],
        "staff": {"alfa@klinika.test": "admin", "recepcja.alfa@klinika.test": "reception",
                  "podglad.alfa@klinika.test": "viewer"},
    },
    "klinika-beta": {
        "name": "Klinika Beta",
        "details": ("ul. Piotrkowska 100, 90-001 Łódź", "+48 42 765 43 21",
                    "recepcja@beta.klinika.test"),
        "doctors": ["dr Maria Wiśniewska", "dr Tomasz Zieliński"],
        "visits": [("Konsultacja", "Consultation", 30, 4000),
                   ("Wybielanie", "Whitening", 60, 12000)],
        "staff": {"beta@klinika.test": "admin", "recepcja.beta@klinika.test": "reception",
                  "podglad.beta@klinika.test": "viewer"},
    },
}
PASSWORD = "test"  # noqa: S105 - the seed's published demo password
HOURS = "mon-fri 09:00-17:00"


def load(url: str) -> None:
    for slug, c in CLINICS.items():
        try:
            admin.add_clinic(url, slug, str(c["name"]))
        except admin.AdminError:
            pass  # already there
        _fill_details(url, slug, c["details"])
        for doctor in c["doctors"]:
            try:
                admin.add_doctor(url, slug, str(doctor), HOURS)
            except admin.AdminError:
                pass
        for name_pl, name_en, minutes, deposit in c["visits"]:
            try:
                admin.add_visit_type(url, slug, name_pl, name_en, minutes, deposit)
            except admin.AdminError:
                pass
        for email, role in c["staff"].items():
            if not _has_staff(url, slug, email):
                admin.add_staff(url, slug, email, PASSWORD, role)


def is_empty(url: str) -> bool:
    with psycopg.connect(url) as conn:
        conn.execute("set role dentbook_owner")
        row = conn.execute("select count(*) from dentbook.public_clinics()").fetchone()
    return row is None or row[0] == 0


def _fill_details(url: str, slug: str, details: tuple[str, str, str]) -> None:
    """Address, phone and e-mail for the e-mails and calendar files, unless an admin has
    already filled any of them in."""
    with admin.as_owner(url) as conn:
        tenant = admin.clinic_id(conn, slug)
        conn.execute("update dentbook.tenants set address = %s, phone = %s, email = %s"
                     " where id = %s and address = '' and phone = '' and email = ''",
                     (*details, tenant))


def _has_staff(url: str, slug: str, email: str) -> bool:
    with admin.as_owner(url) as conn:
        admin.clinic_id(conn, slug)
        row = conn.execute("select 1 from dentbook.staff_accounts where email = %s", (email,))
        return row.fetchone() is not None
