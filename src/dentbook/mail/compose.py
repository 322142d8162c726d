"""The e-mails a patient gets about a visit, as `EmailMessage`s ready for `smtp.send`.

Each is plain text plus HTML (from `templates/email/`, in the language the patient booked
in), with the visit's `.ics` attached where the calendar entry changes. Addresses go into
headers only through `email.headerregistry.Address`, so a hostile name or address can
neither inject a header nor add a recipient. `VisitMail` deliberately has no treatment:
what kind of dental work someone has is health data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime as rfc5322_date
from functools import cache
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from dentbook import i18n
from dentbook.mail.ical import VisitEvent, visit_calendar
from dentbook.mail.wording import N_, one_line, policy_sentence, translator
from dentbook.resources import TEMPLATES_DIR

MailKind = Literal["confirmation", "processing", "payment_failed", "reminder", "cancellation",
                   "reschedule", "refund"]
KINDS: tuple[MailKind, ...] = ("confirmation", "processing", "payment_failed", "reminder",
                               "cancellation", "reschedule", "refund")
_CALENDAR_METHOD: dict[str, Literal["REQUEST", "CANCEL"]] = {
    "confirmation": "REQUEST", "reschedule": "REQUEST", "cancellation": "CANCEL"}
_SUBJECTS: dict[str, str] = {
    "confirmation": N_("Visit confirmed: %(clinic)s, %(when)s"),
    "processing": N_("Payment processing: your visit at %(clinic)s"),
    "payment_failed": N_("Payment failed: your visit at %(clinic)s is not booked"),
    "reminder": N_("Reminder: your visit at %(clinic)s, %(when)s"),
    "cancellation": N_("Visit cancelled: %(clinic)s, %(when)s"),
    "reschedule": N_("Visit moved: %(clinic)s, %(when)s"),
    "refund": N_("Refund of %(amount)s: %(clinic)s"),
}
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[A-Za-z0-9.-]+>")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@dataclass(frozen=True)
class VisitMail:
    """Everything any message about one visit needs (and nothing about the treatment)."""

    booking_id: UUID
    reference: str
    clinic_name: str
    clinic_address: str
    clinic_phone: str
    clinic_email: str
    clinic_url: str  # the clinic's booking page, to book again after a failed payment
    time_zone: str
    doctor_name: str
    starts_at: datetime  # UTC
    ends_at: datetime
    deposit_minor: int
    refund_minor: int
    currency: str
    patient_name: str
    patient_email: str
    locale: str
    visit_url: str | None  # the patient's own link, once the visit has one
    policy_window_hours: int
    late_refund_percent: int
    calendar_uid: str
    sequence: int  # of the calendar entry: higher than any the patient had before
    cancelled_by: Literal["patient", "clinic"] = "patient"
    refund_reason: Literal["cancelled", "lapsed", "mismatch"] = "cancelled"


def message_id(row_id: int, domain: str, salt: str = "") -> str:
    """`<outbox-123.1a2b3c4d@domain>`: the same for every attempt at sending one outbox row.

    `salt` (e.g. the deployment's secret key) keeps two deployments that share a domain and
    row numbers from ever producing the same id, which mail clients treat as a duplicate.
    """
    if not _DOMAIN.fullmatch(domain):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    tag = hmac.new(salt.encode(), str(row_id).encode(), hashlib.sha256).hexdigest()[:8]
    return f"<outbox-{int(row_id)}.{tag}@{domain}>"


def compose(kind: MailKind, mail: VisitMail, *, sender: str, message_id: str,
            date: datetime | None = None) -> EmailMessage:
    """The message of `kind` about `mail`'s visit, from `sender` (our sending address).

    Raises ValueError for an address that is not exactly one mailbox, or a bad Message-ID.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind of message: {kind!r}")
    if mail.locale not in i18n.LOCALES:
        raise ValueError(f"no e-mails in {mail.locale!r}; languages: {', '.join(i18n.LOCALES)}")
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError(f"not a Message-ID: {message_id!r}")
    for url in (mail.visit_url, mail.clinic_url):
        if url is not None and not url.startswith(("https://", "http://")):
            raise ValueError(f"links in e-mail must be http(s) URLs: {url!r}")
    _ = translator(mail.locale)
    values = _values(mail)
    subject = one_line(_(_SUBJECTS[kind], clinic=one_line(mail.clinic_name), when=values["when"],
                         amount=values["refund"]))
    env = _environment(mail.locale)
    context = {"mail": mail, "v": values, "subject": subject, "locale": mail.locale}

    msg = EmailMessage(policy=SMTP)
    msg["From"] = _address(mail.clinic_name, sender)
    msg["To"] = _address(mail.patient_name, mail.patient_email)
    if mail.clinic_email:
        msg["Reply-To"] = _address(mail.clinic_name, mail.clinic_email)
    msg["Subject"] = subject
    msg["Date"] = rfc5322_date((date or datetime.now(UTC)).astimezone(UTC))
    msg["Message-ID"] = message_id
    # Every message about one visit threads together in the patient's mail client.
    domain = message_id[1:-1].rsplit("@", 1)[1]
    msg["References"] = f"<visit-{mail.booking_id}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(env.get_template(f"email/{kind}.txt").render(context), cte="quoted-printable")
    msg.add_alternative(env.get_template(f"email/{kind}.html").render(context), subtype="html",
                        cte="quoted-printable")
    method = _CALENDAR_METHOD.get(kind)
    if method is not None:
        # An invitation (REQUEST, CANCEL) must name its organizer: the clinic's address, or
        # the address this message comes from while the clinic has not given one.
        event = dataclasses.replace(visit_event(mail), clinic_email=mail.clinic_email or sender)
        ics = visit_calendar(event, method, stamp=date)
        msg.add_attachment(ics, maintype="text", subtype="calendar", filename="visit.ics",
                           params={"method": method, "charset": "utf-8"})
    # Last: building the MIME tree moves Content-* headers into the first part.
    msg["Content-Language"] = mail.locale
    return msg


def visit_event(mail: VisitMail) -> VisitEvent:
    """The calendar entry for the visit (also for the visit page's `visit.ics`)."""
    return VisitEvent(
        uid=mail.calendar_uid, sequence=mail.sequence, starts_at=mail.starts_at,
        ends_at=mail.ends_at, clinic_name=mail.clinic_name, clinic_address=mail.clinic_address,
        clinic_phone=mail.clinic_phone, clinic_email=mail.clinic_email,
        doctor_name=mail.doctor_name, patient_name=mail.patient_name,
        patient_email=mail.patient_email, visit_url=mail.visit_url, locale=mail.locale)


def _values(mail: VisitMail) -> dict[str, str]:
    zone = ZoneInfo(mail.time_zone)
    locale = mail.locale
    return {
        "when": i18n.format_datetime(mail.starts_at, zone, locale),
        "until": i18n.format_time(mail.ends_at, zone, locale),
        "deposit": i18n.format_money(mail.deposit_minor, mail.currency, locale),
        "refund": i18n.format_money(mail.refund_minor, mail.currency, locale),
        "policy": policy_sentence(locale, mail.policy_window_hours, mail.late_refund_percent,
                                  mail.deposit_minor),
    }


def _address(name: str, addr_spec: str) -> Address:
    try:
        return Address(display_name=one_line(name), addr_spec=addr_spec)
    except (ValueError, HeaderParseError) as exc:
        raise ValueError(f"not a single e-mail address: {addr_spec!r} ({exc})") from None


@cache
def _environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined, extensions=["jinja2.ext.i18n"], trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True, auto_reload=False)
    # New-style gettext: `_("…%(name)s", name=x)` escapes `x` in HTML and not in text.
    install: Any = env.install_gettext_translations  # type: ignore[attr-defined]
    install(i18n.translations(locale), newstyle=True)
    return env
