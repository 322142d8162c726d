"""The patient's e-mails, sent over SMTP into the sink and read back as a mail client would:
structure, headers, PL and EN wording, the attached .ics, escaping and header injection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from icalendar import Calendar
from mail_kit import SENDER, caught, deliver, visit

from dentbook.mail.compose import KINDS, compose, message_id
from dentbook.mail.inbox import list_messages
from dentbook.mail.smtp import MailError
from dentbook.mail.wording import policy_sentence

MID = "<outbox-17.1a2b3c4d@dentbook.test>"
SENT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def sent(sink, sink_config, kind, **changes):
    """Compose, send through the sink, and return the message as the patient receives it."""
    mail = visit(**changes)
    deliver(sink_config, compose(kind, mail, sender=SENDER, message_id=MID, date=SENT),
            [mail.patient_email])
    return caught(sink)[0]


def texts(msg) -> tuple[str, str]:
    return tuple(msg.get_body((subtype,)).get_content().replace("\r\n", "\n")
                 for subtype in ("plain", "html"))


def calendar_part(msg):
    parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    return parts[0] if parts else None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("locale", ["pl", "en"])
def test_every_kind_is_text_and_html_with_the_right_headers(sink, sink_config, kind, locale):
    msg = sent(sink, sink_config, kind, locale=locale, refund_minor=5000)
    assert msg["Message-ID"] == MID
    assert msg["From"].addresses[0].addr_spec == SENDER
    assert msg["From"].addresses[0].display_name == "Klinika Alfa"
    [to] = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Jan Kowalski", "jan.kowalski@example.com")
    assert msg["Reply-To"].addresses[0].addr_spec == "kontakt@alfa.test"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Content-Language"] == locale
    assert msg["Date"].datetime == SENT
    assert msg["References"] == "<visit-6f1c1d7e-2b1a-4c55-9d2e-0a1b2c3d4e5f@dentbook.test>"
    assert "Klinika Alfa" in msg["Subject"]
    text, html = texts(msg)
    assert html.lstrip().startswith("<!doctype html>") and f'lang="{locale}"' in html
    for part in (text, html):
        assert "ALFA-7K3Q" in part
        assert "dr Anna Żółkiewska" in part
        assert "+48 22 123 45 67" in part
    # The visit is at 09:00 UTC: 10:00 in Warsaw in December.
    assert "10:00" in text and "09:00" not in text
    assert msg.get_body(("plain",))["Content-Type"].params["charset"] == "utf-8"


def test_confirmation_in_polish(sink, sink_config):
    msg = sent(sink, sink_config, "confirmation")
    assert msg["Subject"] == "Wizyta potwierdzona — Klinika Alfa, wtorek, 1 grudnia 2026, 10:00"
    text, html = texts(msg)
    assert "Twoja wizyta jest potwierdzona" in text
    assert "Dzień dobry, Jan Kowalski," in text
    assert "ul. Świętokrzyska 12, 00-001 Warszawa" in text
    assert "Wpłacona zaliczka: 50,00\xa0zł" in text
    assert "Bezpłatne odwołanie do 24 godz. przed wizytą; później zaliczka nie jest zwracana." in text
    assert "https://dentbook.test/klinika-alfa/visits/tok_abc123" in text
    assert '<a href="https://dentbook.test/klinika-alfa/visits/tok_abc123"' in html
    assert "wtorek, 1 grudnia 2026" in text


def test_confirmation_in_english(sink, sink_config):
    msg = sent(sink, sink_config, "confirmation", locale="en")
    assert msg["Subject"].startswith("Visit confirmed: Klinika Alfa, Tuesday, 1 December 2026")
    text, _ = texts(msg)
    assert "Your visit is confirmed" in text
    assert "Deposit paid: PLN\xa050.00" in text
    assert ("Free cancellation until 24 hours before the visit; after that the deposit is not "
            "refunded.") in text


@pytest.mark.parametrize(("locale", "said"), [
    ("pl", "Dziękujemy za rezerwację. Twoja wizyta jest potwierdzona."),
    ("en", "Thank you for booking. Your visit is confirmed.")])
def test_a_visit_booked_by_phone_is_confirmed_without_a_word_of_a_deposit(
        sink, sink_config, locale, said):
    msg = sent(sink, sink_config, "confirmation", locale=locale, deposit_minor=0)
    for part in texts(msg):
        assert said in part
        assert "zaliczk" not in part.lower() and "deposit" not in part.lower()
        assert "https://dentbook.test/klinika-alfa/visits/tok_abc123" in part  # the patient's link
    assert calendar_part(msg) is not None


@pytest.mark.parametrize(("phone", "email", "footer"), [
    ("+48 22 123 45 67", "", "Questions? Call Klinika Alfa at +48 22 123 45 67."),
    ("", "kontakt@alfa.test", "Questions? Reply to this e-mail: it reaches Klinika Alfa."),
    ("", "", None)])
def test_the_footer_offers_only_the_ways_to_reach_the_clinic_it_has(
        sink, sink_config, phone, email, footer):
    msg = sent(sink, sink_config, "confirmation", locale="en", clinic_phone=phone,
               clinic_email=email, clinic_address="")
    assert (msg["Reply-To"] is None) == (not email)
    for part in texts(msg):
        assert "Call Klinika Alfa at  " not in part and "Address" not in part
        assert "or reply to this e-mail" not in part
        if footer:
            assert footer in part
        else:
            assert "Questions?" not in part
        assert "This is an automatic message" in part
    # The invitation still names an organizer: the clinic, or else the sending address.
    event = Calendar.from_ical(calendar_part(msg).get_payload(decode=True)).walk("VEVENT")[0]
    assert str(event["ORGANIZER"]) == f"mailto:{email or SENDER}"


def test_the_calendar_file_matches_its_mime_type(sink, sink_config):
    msg = sent(sink, sink_config, "confirmation", sequence=0)
    part = calendar_part(msg)
    assert part is not None
    assert part.get_filename() == "visit.ics"
    assert part.get_content_disposition() == "attachment"
    assert part["Content-Type"].params["method"] == "REQUEST"
    assert part["Content-Type"].params["charset"] == "utf-8"
    cal = Calendar.from_ical(part.get_content())
    assert str(cal["METHOD"]) == "REQUEST"
    [ev] = cal.walk("VEVENT")
    assert str(ev["UID"]) == "visit-6f1c1d7e-2b1a-4c55-9d2e-0a1b2c3d4e5f@dentbook.test"
    assert int(ev["SEQUENCE"]) == 0
    assert ev.decoded("DTSTAMP") == SENT
    assert str(ev["ORGANIZER"]) == "mailto:kontakt@alfa.test"
    assert str(ev["SUMMARY"]) == "Wizyta u dentysty — Klinika Alfa"


def test_reschedule_then_cancel_update_the_same_calendar_entry(sink, sink_config):
    moved = sent(sink, sink_config, "reschedule", sequence=1,
                 starts_at=datetime(2026, 12, 2, 13, 0, tzinfo=UTC),
                 ends_at=datetime(2026, 12, 2, 13, 30, tzinfo=UTC))
    cancelled = sent(sink, sink_config, "cancellation", sequence=2, refund_minor=5000)
    first = Calendar.from_ical(calendar_part(moved).get_content())
    second = Calendar.from_ical(calendar_part(cancelled).get_content())
    assert calendar_part(moved)["Content-Type"].params["method"] == str(first["METHOD"]) == "REQUEST"
    assert calendar_part(cancelled)["Content-Type"].params["method"] == str(second["METHOD"]) == "CANCEL"
    [a], [b] = first.walk("VEVENT"), second.walk("VEVENT")
    assert str(a["UID"]) == str(b["UID"])
    assert (int(a["SEQUENCE"]), int(b["SEQUENCE"])) == (1, 2)
    assert str(b["STATUS"]) == "CANCELLED"
    assert "14:00" in texts(moved)[0]  # 13:00 UTC in Warsaw
    assert "Zwrócimy 50,00\xa0zł zaliczki" in texts(cancelled)[0]


@pytest.mark.parametrize("kind", ["processing", "payment_failed", "reminder", "refund"])
def test_only_calendar_changes_carry_a_calendar_file(sink, sink_config, kind):
    assert calendar_part(sent(sink, sink_config, kind)) is None


def test_reminder_wording(sink, sink_config):
    msg = sent(sink, sink_config, "reminder", locale="en")
    # Exactly clinic and time: a subject shows on lock screens, so no treatment (and there is
    # no field that could carry one: test_ical checks the dataclasses).
    assert msg["Subject"] == "Reminder: your visit at Klinika Alfa, Tuesday, 1 December 2026, 10:00"
    text, _ = texts(msg)
    assert "This is a reminder of your dental visit." in text
    assert "Deposit" not in text
    assert "https://dentbook.test/klinika-alfa/visits/tok_abc123" in text


def test_cancellation_wording(sink, sink_config):
    late, _ = texts(sent(sink, sink_config, "cancellation", locale="en", refund_minor=0))
    assert "The deposit is not refunded" in late and "as you asked" in late
    by_clinic, _ = texts(sent(sink, sink_config, "cancellation", locale="en", refund_minor=5000,
                              cancelled_by="clinic"))
    assert "the clinic has had to cancel your visit" in by_clinic
    assert "PLN\xa050.00 of your deposit will be refunded" in by_clinic
    free, _ = texts(sent(sink, sink_config, "cancellation", locale="en", deposit_minor=0))
    assert "deposit" not in free.lower()


def test_refund_says_why(sink, sink_config):
    lapsed = sent(sink, sink_config, "refund", refund_reason="lapsed", refund_minor=5000)
    assert lapsed["Subject"] == "Zwrot 50,00\xa0zł — Klinika Alfa"
    assert "dotarła po wygaśnięciu rezerwacji" in texts(lapsed)[0]
    cancelled, _ = texts(sent(sink, sink_config, "refund", locale="en", refund_minor=2500))
    assert "Your visit was cancelled, and we have refunded PLN\xa025.00" in cancelled
    for part in texts(sent(sink, sink_config, "refund", locale="en", refund_reason="mismatch",
                           refund_minor=1)):
        assert "The amount paid was not the deposit asked for" in part
        assert "expired" not in part and "cancelled" not in part


def test_processing_and_failed_payment(sink, sink_config):
    processing, _ = texts(sent(sink, sink_config, "processing", locale="en"))
    assert "your bank has not confirmed the payment yet" in processing
    assert "Deposit (being processed): PLN\xa050.00" in processing
    failed_msg = sent(sink, sink_config, "payment_failed", visit_url=None)
    failed, html = texts(failed_msg)
    assert "nie jest zarezerwowana" in failed
    assert "https://dentbook.test/klinika-alfa\n" in failed
    assert "visits/" not in failed and "visits/" not in html


def test_html_escapes_what_the_patient_typed(sink, sink_config):
    name = '<script>alert(1)</script> & "Jan"'
    msg = sent(sink, sink_config, "confirmation", patient_name=name)
    text, html = texts(msg)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Jan&#34;" in html
    assert name in text  # plain text is shown as typed
    assert msg["To"].addresses[0].display_name == name


@pytest.mark.parametrize("name", [
    "Jan\r\nBcc: evil@example.com", "Kowalski, Jan <evil@example.com>", 'Jan" <evil@example.com>, "x',
    "Jan\nTo: evil@example.com", "=?utf-8?q?evil=40example.com?=",
])
def test_a_hostile_name_never_adds_a_recipient_or_header(sink, sink_config, name):
    msg = sent(sink, sink_config, "confirmation", patient_name=name)
    assert [a.addr_spec for a in msg["To"].addresses] == ["jan.kowalski@example.com"]
    assert msg["Bcc"] is None and len(msg.get_all("To")) == 1
    assert list_messages(sink.directory)[0].to == ("jan.kowalski@example.com",)


@pytest.mark.parametrize("address", [
    "jan@example.com, evil@example.com", "jan@example.com\r\nBcc: evil@example.com",
    "Jan <jan@example.com>", "jan@example.com evil@example.com", "jan@example.com>, <evil@example.com",
    "<jan@example.com>",
])
def test_a_hostile_address_is_refused_by_compose_and_by_send(sink, sink_config, address):
    with pytest.raises(ValueError, match="not a single e-mail address"):
        compose("confirmation", visit(patient_email=address), sender=SENDER, message_id=MID)
    fine = compose("confirmation", visit(), sender=SENDER, message_id=MID)
    with pytest.raises(MailError) as err:
        deliver(sink_config, fine, [address])
    assert err.value.transient is False
    assert list_messages(sink.directory) == []


def test_a_hostile_clinic_name_stays_in_the_subject(sink, sink_config):
    msg = sent(sink, sink_config, "reminder", clinic_name="Alfa\r\nBcc: evil@example.com")
    assert msg["Bcc"] is None
    assert "Alfa Bcc: evil@example.com" in msg["Subject"]
    assert list_messages(sink.directory)[0].to == ("jan.kowalski@example.com",)


def test_links_must_be_web_addresses():
    with pytest.raises(ValueError, match="http"):
        compose("reminder", visit(visit_url="javascript:alert(1)"), sender=SENDER, message_id=MID)
    with pytest.raises(ValueError, match="Message-ID"):
        compose("reminder", visit(), sender=SENDER, message_id="outbox-1@x\r\nBcc: e@x")
    with pytest.raises(ValueError, match="languages"):
        compose("reminder", visit(locale="de"), sender=SENDER, message_id=MID)
    with pytest.raises(ValueError, match="kind"):
        compose("invoice", visit(), sender=SENDER, message_id=MID)  # type: ignore[arg-type]


def test_message_ids_are_stable_per_row():
    first = message_id(123, "dentbook.test")
    assert first == message_id(123, "dentbook.test")
    assert first.startswith("<outbox-123.") and first.endswith("@dentbook.test>")
    assert message_id(124, "dentbook.test") != first
    assert message_id(123, "dentbook.test", salt="other deployment") != first
    compose("reminder", visit(), sender=SENDER, message_id=first)  # accepted as a Message-ID
    for bad in ("", "dentbook.test>", "a b", "x@y", "-dentbook.test"):
        with pytest.raises(ValueError):
            message_id(1, bad)


@pytest.mark.parametrize(("locale", "window", "late", "deposit", "expected"), [
    ("en", 24, 0, 5000, "Free cancellation until 24 hours before the visit; after that the "
                        "deposit is not refunded."),
    ("en", 1, 50, 5000, "Free cancellation until 1 hour before the visit; after that 50% of the "
                        "deposit is refunded."),
    ("pl", 48, 50, 5000, "Bezpłatne odwołanie do 48 godz. przed wizytą; później zwracamy 50% "
                         "zaliczki."),
    ("pl", 24, 100, 5000, "Wizytę możesz odwołać z pełnym zwrotem zaliczki w dowolnym momencie "
                          "przed jej rozpoczęciem."),
    ("en", 0, 0, 5000, "You can cancel with a full refund of the deposit at any time before the "
                       "visit."),
    ("pl", 24, 0, 0, "Wizytę możesz bezpłatnie odwołać w dowolnym momencie przed jej "
                     "rozpoczęciem."),
])
def test_policy_sentence(locale, window, late, deposit, expected):
    assert policy_sentence(locale, window, late, deposit) == expected
