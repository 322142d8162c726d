"""The patient's visit after payment, end to end through HTTP, the real local Stripe and the
real mail sink: the confirmation with its calendar file, the patient's own link, cancelling
with the policy's refund (exactly once), moving the visit (the exclusion constraint decides),
and the answers to everything that may not be done."""

from __future__ import annotations

import email
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.policy import default

import httpx
import icalendar
import pytest

from dentbook.mail.inbox import list_messages, raw_message
from desk_helpers import desk
from helpers import SseClient, book, book_and_pay, booking_row, free_starts, next_week, owner_sql, wait_for


def unique(name: str) -> str:
    """An address no other test writes to (they all share the suite's mail sink)."""
    return f"{name}.{uuid.uuid4().hex[:8]}@example.com"


def mails_to(sink, address: str) -> list[EmailMessage]:
    """What the sink caught for `address` (its envelope), oldest first."""
    found = []
    for summary in reversed(list_messages(sink.directory, limit=10_000)):
        if address in summary.to:
            raw = raw_message(sink.directory, summary.id)
            assert raw is not None
            found.append(email.message_from_bytes(raw, policy=default))
    return found


def wait_mail(sink, address: str, count: int) -> list[EmailMessage]:
    return wait_for(lambda: (lambda m: m if len(m) >= count else None)(mails_to(sink, address)),
                    timeout=30, what=f"{count} e-mail(s) to {address}")  # type: ignore[return-value]


def calendar_of(message: EmailMessage) -> tuple[icalendar.Calendar, str]:
    """The message's calendar attachment, parsed, and the method in its MIME type."""
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    return icalendar.Calendar.from_ical(part.get_payload(decode=True)), part.get_param("method")


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def visit_link(message: EmailMessage, slug: str) -> str:
    found = re.search(rf"https?://[^\s/]+(/{slug}/visits/[A-Za-z0-9_-]{{43}})", text_of(message))
    assert found, text_of(message)
    return found.group(1)


def paid_visit(client, clinic, stripe_local, pg, address: str, start: str | None = None,
               index: int = 0):
    return book_and_pay(client, pg, clinic, stripe_local, email=address, start=start, index=index)


def paid_visit_with_link(client, clinic, stripe_local, pg, mail_sink, name: str,
                         index: int = 0) -> tuple[dict, str]:
    """A paid visit for a fresh address, and the patient's link from its confirmation e-mail."""
    address = unique(name)
    row, _ = paid_visit(client, clinic, stripe_local, pg, address, index=index)
    return row, visit_link(wait_mail(mail_sink, address, 1)[0], clinic.slug)


def move_visit(pg, clinic, booking_id, starts_in: str) -> None:
    """Moves the 30-minute visit to start `starts_in` from now ('-5 minutes': it has begun)."""
    owner_sql(pg.owner, clinic.id, "update dentbook.bookings set during = tstzrange("
              "now() + %s::interval, now() + %s::interval + interval '30 minutes')"
              " where id = %s returning 1", (starts_in, starts_in, booking_id))


def _csrf(page: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', page).group(1)


def test_book_pay_mail_link_cancel_refund_once_and_the_slot_free_live(
        client, server, pg, clinic, stripe_local, mail_sink):
    address = unique("anna")
    week = next_week(client, clinic.slug)
    start = free_starts(client, clinic.slug, clinic.doctors[0], clinic.visits["short"], week)[2]
    watcher = SseClient(f"{server.url}/{clinic.slug}/events?doctor={clinic.doctors[0]}"
                        f"&visit={clinic.visits['short']}&week={week}")
    try:
        row, _ = paid_visit(client, clinic, stripe_local, pg, address, start=start)
        watcher.wait_state(start, "taken")
        # the return page: reference, the patient's link, an e-mail on its way
        back = client.get(f"/{clinic.slug}/bookings/{row['id']}/return")
        assert row["reference"] and row["reference"] in back.text
        assert "data-visit-link" in back.text and 'data-status="confirmed"' in back.text

        [confirmation] = wait_mail(mail_sink, address, 1)
        assert row["reference"] in text_of(confirmation)
        cal, method = calendar_of(confirmation)
        assert method == "REQUEST" and cal["METHOD"] == "REQUEST"
        event = cal.walk("VEVENT")[0]
        uid, sequence = str(event["UID"]), int(event["SEQUENCE"])
        assert sequence == 0 and event.get("DTSTAMP") and "ORGANIZER" in event
        for treatment in ("Krótka", "Short"):  # the visit type is health data
            assert treatment not in str(event["SUMMARY"]) and treatment not in text_of(confirmation)

        link = visit_link(confirmation, clinic.slug)
        assert back.text.count(link) >= 1  # the same link on the page and in the e-mail
        page = client.get(link)
        assert page.status_code == 200 and 'data-status="confirmed"' in page.text
        assert f'data-start="{start}"' in page.text and 'data-refund-now="5000"' in page.text
        ics = client.get(link + "/visit.ics")
        assert ics.status_code == 200 and str(icalendar.Calendar.from_ical(ics.content).walk(
            "VEVENT")[0]["UID"]) == uid

        gone = client.post(link + "/cancel", data={"_csrf_token": _csrf(page.text)})
        assert gone.status_code == 303 and gone.headers["location"].endswith("done=cancelled")
        watcher.wait_state(start, "free")  # free for everyone at once
        assert booking_row(pg.owner, clinic.id, row["stripe_session_id"])["status"] == "cancelled"

        # refunded in full, exactly once, after the commit
        wait_for(lambda: len(stripe_local.refunds(row["stripe_payment_intent_id"])) == 1,
                 what="the refund")
        [refund] = stripe_local.refunds(row["stripe_payment_intent_id"])
        assert refund["amount"] == 5000
        wait_for(lambda: 'data-refunded="5000"' in client.get(link).text, what="refund shown")

        mails = wait_mail(mail_sink, address, 3)  # confirmation, cancellation, refund
        kinds = {m["Subject"].split(":")[0] for m in mails}
        assert len(kinds) == 3
        calendars = [calendar_of(m) for m in mails
                     if "text/calendar" in [p.get_content_type() for p in m.walk()]]
        assert [method for _, method in calendars] == ["REQUEST", "CANCEL"]
        cal = calendars[1][0]
        cancelled = cal.walk("VEVENT")[0]
        assert cal["METHOD"] == "CANCEL" and cancelled["STATUS"] == "CANCELLED"
        assert str(cancelled["UID"]) == uid and int(cancelled["SEQUENCE"]) > sequence
        # cancelling again changes nothing and says why
        again = client.post(link + "/cancel", data={"_csrf_token": _csrf(page.text)})
        assert again.status_code == 409 and 'data-error="not_cancellable"' in again.text
        assert len(stripe_local.refunds(row["stripe_payment_intent_id"])) == 1
    finally:
        watcher.close()


def test_moving_a_visit_is_atomic_and_a_race_for_one_slot_has_one_winner(
        client, server, pg, clinic, stripe_local, mail_sink):
    week = next_week(client, clinic.slug)
    starts = free_starts(client, clinic.slug, clinic.doctors[0], clinic.visits["short"], week)
    movers = [unique(f"mover{i}") for i in range(2)]
    rows = [paid_visit(client, clinic, stripe_local, pg, movers[i], start=starts[i])[0]
            for i in range(2)]
    links = [visit_link(wait_mail(mail_sink, movers[i], 1)[0], clinic.slug) for i in range(2)]
    target = starts[5]
    pages = [client.get(link + "/reschedule") for link in links]
    assert all(p.status_code == 200 and f'value="{target}"' in p.text for p in pages)

    def move(i: int) -> int:
        with httpx.Client(base_url=server.url, cookies=client.cookies) as c:
            return c.post(links[i] + "/reschedule", data={
                "start": target, "_csrf_token": _csrf(pages[i].text)}).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(move, range(2)))
    assert codes == [303, 409]
    now = owner_sql(pg.owner, clinic.id, "select lower(during), status from dentbook.bookings"
                    " where id = any(%s) order by lower(during)", ([r["id"] for r in rows],))
    # one moved to the target, the other is exactly where it was: never both, never neither
    times = sorted(t.strftime("%Y-%m-%dT%H:%M:%SZ") for t, _ in now)
    assert target in times and len(set(times)) == 2 and {s for _, s in now} == {"confirmed"}
    assert times.count(target) == 1 and (starts[0] in times) != (starts[1] in times)
    moved = next(i for i, r in enumerate(rows) if owner_sql(
        pg.owner, clinic.id, "select lower(during) from dentbook.bookings where id = %s",
        (r["id"],))[0][0].strftime("%Y-%m-%dT%H:%M:%SZ") == target)
    mails = wait_mail(mail_sink, movers[moved], 2)
    cal, method = calendar_of(mails[-1])
    assert method == "REQUEST" and int(cal.walk("VEVENT")[0]["SEQUENCE"]) == 1
    # the page of the one that did not move says so and offers the grid again
    loser = client.get(links[1 - moved])
    assert f'data-start="{starts[1 - moved]}"' in loser.text


def test_late_cancellation_follows_the_policy_and_rescheduling_closes(
        client, pg, clinic, stripe_local, mail_sink):
    row, link = paid_visit_with_link(client, clinic, stripe_local, pg, mail_sink, "late", index=4)
    # the clinic's window (24 h, refund share 0 %) has closed: move the visit into it
    move_visit(pg, clinic, row["id"], "3 hours")
    page = client.get(link)
    assert 'data-refund-now="0"' in page.text and "/reschedule" not in page.text
    refused = client.post(link + "/reschedule", data={"start": row["starts_at"].isoformat(),
                                                       "_csrf_token": _csrf(page.text)})
    assert refused.status_code == 409 and 'data-error="not_movable"' in refused.text
    gone = client.post(link + "/cancel", data={"_csrf_token": _csrf(page.text)})
    assert gone.status_code == 303
    assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.refunds where booking_id"
                     " = %s", (row["id"],)) == [(0,)]


def test_a_late_cancellation_refunds_the_policys_share_not_the_whole_deposit(
        client, pg, make_clinic, stripe_local, mail_sink):
    clinic = make_clinic()
    owner_sql(pg.owner, clinic.id, "update dentbook.tenants set late_refund_percent = 40"
              " returning 1")
    row, link = paid_visit_with_link(client, clinic, stripe_local, pg, mail_sink, "share",
                                     index=4)
    move_visit(pg, clinic, row["id"], "3 hours")
    share = row["amount_minor"] * 40 // 100
    page = client.get(link)
    assert f'data-refund-now="{share}"' in page.text
    assert client.post(link + "/cancel", data={"_csrf_token": _csrf(page.text)}).status_code == 303
    wait_for(lambda: len(stripe_local.refunds(row["stripe_payment_intent_id"])) == 1,
             what="the refund")
    # Stripe is asked for the recorded share, not the whole payment
    [refund] = stripe_local.refunds(row["stripe_payment_intent_id"])
    assert refund["amount"] == share < row["amount_minor"]
    assert owner_sql(pg.owner, clinic.id, "select amount_minor from dentbook.refunds"
                     " where booking_id = %s", (row["id"],)) == [(share,)]


def test_reception_revokes_a_leaked_link_and_the_visit_gets_a_new_one(
        client, server, pg, clinic, stripe_local, mail_sink):
    row, link = paid_visit_with_link(client, clinic, stripe_local, pg, mail_sink, "leaked",
                                     index=6)
    assert client.get(link).status_code == 200
    with desk(server, pg, clinic, role="viewer") as viewer:  # a viewer may not
        assert viewer.post(f"/bookings/{row['id']}/link/revoke").status_code == 403
    assert client.get(link).status_code == 200
    with desk(server, pg, clinic) as reception:
        page = reception.get(f"/bookings/{row['id']}")
        assert 'data-form="revoke-link"' in page.text
        r = reception.post(f"/bookings/{row['id']}/link/revoke")
        assert r.status_code == 303
        assert 'data-done="link_revoked"' in reception.http.get(r.headers["location"]).text
    gone = client.get(link, params={"lang": "en"})
    assert gone.status_code == 404 and 'data-error="visit_link"' in gone.text
    assert owner_sql(pg.owner, clinic.id, "select action from dentbook.audit_log where"
                     " booking_id = %s and action = 'link.revoked'", (row["id"],)) == [
        ("link.revoked",)]
    # The patient's way back (the payment's return page, or the next e-mail) has a new link.
    back = client.get(f"/{clinic.slug}/bookings/{row['id']}/return",
                      params={"session_id": row["stripe_session_id"]})
    fresh = re.search(rf'href="(/{clinic.slug}/visits/[A-Za-z0-9_-]{{43}})"', back.text).group(1)
    assert fresh != link and client.get(fresh).status_code == 200
    assert client.get(link).status_code == 404  # the old one stays dead


def test_a_visit_that_has_begun_cannot_be_cancelled(client, pg, clinic, stripe_local, mail_sink):
    row, link = paid_visit_with_link(client, clinic, stripe_local, pg, mail_sink, "begun",
                                     index=5)
    token = _csrf(client.get(link).text)  # the form as it was shown before the visit began
    move_visit(pg, clinic, row["id"], "-5 minutes")
    assert "/cancel" not in client.get(link).text  # no form offered now
    refused = client.post(link + "/cancel", data={"_csrf_token": token})
    assert refused.status_code == 409 and 'data-error="not_cancellable"' in refused.text
    assert booking_row(pg.owner, clinic.id, row["stripe_session_id"])["status"] == "confirmed"


@pytest.mark.parametrize("token", ["x" * 43, "short", "a" * 200, "a" * 42 + "!"])
def test_unknown_or_tampered_links_are_one_localized_404(client, clinic, token):
    for path in ("", "/reschedule", "/visit.ics"):
        r = client.get(f"/{clinic.slug}/visits/{token}{path}", params={"lang": "en"})
        assert r.status_code == 404 and 'data-error="visit_link"' in r.text, path
        assert "contact the clinic" in r.text


def test_another_clinics_link_does_not_open_here(client, pg, make_clinic, stripe_local, mail_sink):
    a, b = make_clinic(), make_clinic()
    _, link = paid_visit_with_link(client, a, stripe_local, pg, mail_sink, "elsewhere")
    assert client.get(link).status_code == 200
    assert client.get(link.replace(f"/{a.slug}/", f"/{b.slug}/")).status_code == 404


def test_a_hostile_address_never_reaches_the_envelope_as_two(client, clinic, mail_sink):
    for address in ("a@example.com,b@example.com", "a@example.com\r\nBcc: b@example.com",
                    "a@example.com b@example.com"):
        r, _ = book(client, clinic, email=address)
        assert r.status_code == 422 and 'data-field-error="email"' in r.text
    assert not mails_to(mail_sink, "b@example.com")
