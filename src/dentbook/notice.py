"""The clinic's privacy notice (GDPR Art. 13): the default text filled from the clinic's
details, the clinic's own versions, and the simple text format both are written in.

Until a clinic's admin saves a version of its own, patients read the default notice (version
0), written here in both languages from the clinic's name, address, e-mail, phone and
retention settings, so it is never out of date with them. An admin edits a copy of it and
saves it as version 1, 2, …: every version is kept, because each booking records the
version in force when it was made (`sql/triggers.sql: stamp_privacy_version`).

The format is plain text: blocks separated by a blank line; a block starting with "# " is a
heading, a block whose lines start with "- " is a list, anything else a paragraph. Shown
escaped, so an admin's text can never add markup to the page.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from dentbook.db import Conn, one, rows
from dentbook.forms import VERBATIM
from dentbook.i18n import translations

CONTROLLER = "select * from dentbook.privacy_controller()"
VERSION = "select * from dentbook.privacy_notice(%s)"
VERSIONS = "select * from dentbook.privacy_versions()"
SAVE = "select dentbook.save_privacy_notice(%s, %s)"
MAX_LENGTH = 20_000
# Controls other than line breaks and tabs have no place in a notice.
_BODY = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]+$"
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LENGTH, pattern=_BODY,
                                   extra=VERBATIM)]


class NoticeForm(msgspec.Struct, frozen=True):
    body_pl: Body
    body_en: Body


class VersionQuery(msgspec.Struct, frozen=True):
    version: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None


@dataclass(frozen=True)
class Controller:
    name: str
    address: str
    email: str
    phone: str
    retention_years: int
    unpaid_erasure_days: int
    current_version: int


@dataclass(frozen=True)
class Version:
    version: int
    created_at: datetime


@dataclass(frozen=True)
class Saved:
    version: int
    body_pl: str
    body_en: str
    created_at: datetime

    def body(self, locale: str) -> str:
        return self.body_pl if locale == "pl" else self.body_en


@dataclass(frozen=True)
class Block:
    kind: Literal["heading", "list", "paragraph"]
    lines: tuple[str, ...]


def normalise(text: str) -> str:
    """What a submitted notice becomes before it is checked: NFC, Unix line ends, no
    trailing spaces, at most one blank line between blocks."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n\n".join(b for b in "\n".join(lines).split("\n\n") if b.strip()).strip("\n")


def blocks(text: str) -> list[Block]:
    out: list[Block] = []
    for raw in normalise(text).split("\n\n"):
        lines = tuple(line.strip() for line in raw.split("\n") if line.strip())
        if not lines:
            continue
        if lines[0].startswith("# "):
            out.append(Block("heading", (" ".join(lines)[2:].strip(),)))
        elif all(line.startswith("- ") for line in lines):
            out.append(Block("list", tuple(line[2:].strip() for line in lines)))
        else:
            out.append(Block("paragraph", (" ".join(lines),)))
    return out


async def controller(conn: Conn) -> Controller:
    found = await one(conn, Controller, CONTROLLER)
    assert found is not None  # the transaction's clinic exists: it was resolved from its slug
    return found


async def saved(conn: Conn, version: int) -> Saved | None:
    return await one(conn, Saved, VERSION, (version,))


async def versions(conn: Conn) -> list[Version]:
    return await rows(conn, Version, VERSIONS)


async def save(conn: Conn, form: NoticeForm) -> int:
    """A new version (staff level; the SQL function checks the account is an admin)."""
    row = await (await conn.execute(SAVE, (form.body_pl, form.body_en))).fetchone()
    assert row is not None
    return int(str(row[0]))


def default_text(c: Controller, locale: str) -> str:
    """The default notice in `locale`, filled from the clinic's details and settings."""
    gettext = translations(locale).gettext

    def _(message: str, **values: object) -> str:
        text = str(gettext(message))
        return text % values if values else text

    contact = [f"- {label}: {value}" for label, value in (
        (_("Address"), c.address), (_("E-mail"), c.email), (_("Phone"), c.phone)) if value]
    # Polish says "after 1 day" and "after 5 days" differently; English only by the plural.
    if c.unpaid_erasure_days == 1:
        unpaid = _("If the deposit is not paid, your personal data is erased 1 day after the "
                   "unpaid booking lapsed or was cancelled.")
    else:
        unpaid = _("If the deposit is not paid, your personal data is erased %(days)s days after "
                   "the unpaid booking lapsed or was cancelled.", days=c.unpaid_erasure_days)
    if c.retention_years == 1:
        visits = _("Data about your visits is anonymised 1 year after the visit.")
    else:
        visits = _("Data about your visits is anonymised %(years)s years after the visit.",
                   years=c.retention_years)
    parts = [
        "# " + _("Who is responsible for your data"),
        _("The controller of your personal data is %(clinic)s.", clinic=c.name),
        "\n".join(contact),
        _("You can contact us about your data in any of these ways.") if contact
        else _("You can ask about your data at the clinic's reception."),
        "# " + _("What data we process"),
        _("When you book a visit we process your name, your e-mail address, your phone number "
          "if you give it, the visit (doctor, type of visit, date and time), the deposit payment "
          "(amount and payment references), the network address of your browser, and the "
          "messages we send you. Because the visit is a health service, the fact that you "
          "booked it is data about your health."),
        _("Your name and e-mail address are needed to book a visit online: without them we "
          "cannot book it. Your phone number is optional."),
        "# " + _("Why, and on what legal basis"),
        "\n".join([
            "- " + _("To book your visit, confirm and remind you of it, and let you cancel or move "
                     "it: the contract with you (Art. 6(1)(b) GDPR)."),
            "- " + _("To provide health care, including the data about the health service you "
                     "booked: Art. 9(2)(h) GDPR with the laws on health care."),
            "- " + _("To keep the accounting records of paid deposits: our legal obligation "
                     "(Art. 6(1)(c) GDPR with the Accounting Act)."),
            "- " + _("To protect the booking service from abuse (limits on unpaid bookings per "
                     "network address) and keep a record of changes: our legitimate interest "
                     "(Art. 6(1)(f) GDPR)."),
        ]),
        _("We do not make decisions about you by automated means, including profiling."),
        "# " + _("Who receives your data"),
        "\n".join([
            "- " + _("Stripe, the payment processor, when you pay the deposit: your e-mail "
                     "address and what is needed to take the payment."),
            "- " + _("Our e-mail provider, which delivers the messages we send you."),
            "- " + _("The provider of the booking service, which hosts it on our behalf."),
        ]),
        _("Stripe may process data outside the European Economic Area, under the safeguards the "
          "GDPR requires (such as the European Commission's standard contractual clauses)."),
        "# " + _("How long we keep it"),
        "\n".join([
            "- " + unpaid,
            "- " + visits,
            "- " + _("Records of paid deposits (amount, date and payment references) are kept for "
                     "5 years, as the Accounting Act requires (art. 74), without your name or "
                     "contact details."),
        ]),
        "# " + _("Your rights"),
        _("You have the right to access your data and receive a copy of it, to have it "
          "rectified or erased, to restrict its processing, to data portability, and to object "
          "to processing based on our legitimate interest. To use them, contact us as above."),
        _("You also have the right to lodge a complaint with the supervisory authority: the "
          "President of the Personal Data Protection Office (Prezes Urzędu Ochrony Danych "
          "Osobowych), ul. Stawki 2, 00-193 Warszawa."),
    ]
    return "\n\n".join(p for p in parts if p)
