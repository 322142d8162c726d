"""The outbox under faults, each on a database of its own (its app processes share its jobs):
the mail server down (messages wait and go out when it is back), two processes (a message
is sent once), a restart (a reminder that fell due meanwhile is sent, once)."""

from __future__ import annotations

import collections
import email
import logging
from email.policy import default
from pathlib import Path

import httpx
import pytest

from dentbook.mail.inbox import list_messages, raw_message
from dentbook.mail.sink import MailSink
from helpers import (
    AppProcess,
    app_settings,
    book,
    booking_row,
    free_port,
    new_clinic,
    owner_sql,
    session_of,
    stripe_and_app,
    wait_for,
)
from staff_helpers import add_staff, insert_booking, signed_in


def _caught(directory: Path) -> list[email.message.EmailMessage]:
    found = []
    for summary in list_messages(directory, limit=10_000):
        raw = raw_message(directory, summary.id)
        assert raw is not None
        found.append(email.message_from_bytes(raw, policy=default))
    return found


def _settings(pg, stripe, smtp_url, **more):
    return app_settings(pg, **stripe.app_settings(), smtp_url=smtp_url, job_retry_seconds=0.5, **more)


def test_mail_waits_while_the_server_is_down_and_goes_out_when_it_is_back(private_pg, tmp_path):
    pg = private_pg
    clinic = new_clinic(pg)
    mail_port = free_port()
    stripe, app = stripe_and_app(pg, smtp_url=f"smtp://127.0.0.1:{mail_port}", job_retry_seconds=0.5)
    sink = MailSink(tmp_path / "mail", port=mail_port)
    try:
        with httpx.Client(base_url=app.url, timeout=30) as client:
            r, _ = book(client, clinic, email="patient.waits@example.com")
            session = session_of(r.headers["location"])
            stripe.pay(session)
            wait_for(lambda: booking_row(pg.owner, clinic.id, session)["status"] == "confirmed",
                     what="confirmed")
        # nobody listens on the mail port: the message is tried, fails, and waits
        confirmation = ("select j.attempts, j.state, j.last_error from dentbook.jobs j join"
                        " dentbook.messages m on m.id = j.ref where m.kind = 'confirmation'")
        wait_for(lambda: owner_sql(pg.owner, clinic.id, confirmation)[0][0] >= 2,
                 what="failed attempts")
        [(_, state, error)] = owner_sql(pg.owner, clinic.id, confirmation)
        assert state == "due" and "cannot reach" in error
        sink.start_thread()  # the mail server is back
        wait_for(lambda: _caught(sink.directory), timeout=30, what="the e-mail")
        [sent] = _caught(sink.directory)
        assert "patient.waits@example.com" in sent["To"]
        wait_for(lambda: owner_sql(pg.owner, clinic.id, "select state from dentbook.messages"
                                   " where kind = 'confirmation'") == [("sent",)], what="marked sent")
    finally:
        app.stop()
        stripe.stop()
        sink.stop_thread()


def test_a_message_sent_is_done_at_its_first_attempt_with_info_logging(
        private_pg, recording_stripe, sink, start_app, caplog):
    """Logged as production logs (INFO): sending once is one attempt, no error, no retry."""
    caplog.set_level(logging.INFO, logger="dentbook")
    pg = private_pg
    clinic = new_clinic(pg)
    start_app(_settings(pg, recording_stripe, sink.url))
    visit = insert_booking(pg, clinic, "3 days", "Ola Once", email="ola.once@example.com")
    owner_sql(pg.owner, clinic.id, "select dentbook.enqueue_message(%s, 'confirmation')", (visit,))
    done = "select state, attempts, last_error from dentbook.jobs where kind = 'email'"
    wait_for(lambda: owner_sql(pg.owner, clinic.id, done)[0][0] == "done", what="job done")
    assert owner_sql(pg.owner, clinic.id, done) == [("done", 1, None)]
    assert len(_caught(sink.directory)) == 1
    assert any(r.getMessage() == "e-mail sent" for r in caplog.records)


def test_a_message_given_up_is_on_the_clinics_audit_page(private_pg, recording_stripe, start_app):
    pg = private_pg
    clinic = new_clinic(pg)
    # Nobody listens on the mail port, and two attempts are all a message gets.
    app = start_app(_settings(pg, recording_stripe, f"smtp://127.0.0.1:{free_port()}", job_attempts=2))
    visit = insert_booking(pg, clinic, "3 days", "Pat Given-Up", email="given.up@example.com")
    owner_sql(pg.owner, clinic.id, "select dentbook.enqueue_message(%s, 'reminder')", (visit,))
    wait_for(lambda: owner_sql(pg.owner, clinic.id, "select state from dentbook.jobs"
                               " where kind = 'email'") == [("failed",)], what="given up")
    [(detail, after, booking)] = owner_sql(
        pg.owner, clinic.id, "select detail, after, booking_id from dentbook.audit_log"
        " where action = 'job.failed'")
    assert (detail, after, booking) == ("email: reminder", {"attempts": 2}, visit)
    assert owner_sql(pg.owner, clinic.id, "select state from dentbook.messages"
                     " where booking_id = %s", (visit,)) == [("failed",)]
    # The audit says what was given up, never who it was for.
    with httpx.Client(base_url=app.url, timeout=30) as client:
        signed_in(client, clinic.slug, add_staff(pg, clinic, role="viewer"))
        page = client.get(f"/{clinic.slug}/staff/audit", params={"booking": str(visit)},
                          headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert 'data-action="job.failed"' in page.text
    assert "the reminder could not be sent" in page.text
    assert "given.up@example.com" not in page.text and "Pat Given-Up" not in page.text


def test_two_processes_never_send_one_message_twice(private_pg, recording_stripe, sink, start_app):
    pg = private_pg
    clinic = new_clinic(pg)
    start_app(_settings(pg, recording_stripe, sink.url))
    b = AppProcess(pg.app, recording_stripe.url, {"SMTP_URL": sink.url,
                                                  "DENTBOOK_JOB_RETRY_SECONDS": "0.5"}).start()
    try:
        bookings = [insert_booking(pg, clinic, f"{3 + i // 10} days {i % 10} hours", f"Pat {i}",
                                   email=f"twice{i}@example.com") for i in range(40)]
        # one transaction writes forty messages: both processes wake and race for them
        owner_sql(pg.owner, clinic.id, "select dentbook.enqueue_message(b, 'confirmation')"
                  " from unnest(%s::uuid[]) b", (bookings,))
        wait_for(lambda: len(_caught(sink.directory)) >= 40, timeout=60, what="forty e-mails")
        ids = [m["Message-ID"] for m in _caught(sink.directory)]
        assert len(ids) == 40 and len(set(ids)) == 40, collections.Counter(ids).most_common(3)
        assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.messages"
                         " where state = 'sent'") == [(40,)]
    finally:
        b.stop()


def test_a_reminder_that_fell_due_while_no_server_ran_is_sent_once(private_pg, recording_stripe,
                                                                    sink, start_app):
    pg = private_pg
    clinic = new_clinic(pg)
    visit = insert_booking(pg, clinic, "20 hours", "Rita Reminder", email="rita@example.com")
    owner_sql(pg.owner, clinic.id, "select dentbook.enqueue_message(%s, 'reminder',"
              " now() - interval '10 minutes')", (visit,))
    for _ in range(2):  # start, let it work, stop; start again: nothing more is sent
        app = start_app(_settings(pg, recording_stripe, sink.url))
        wait_for(lambda: len(_caught(sink.directory)) >= 1, timeout=30, what="reminder")
        app.stop()
    [reminder] = _caught(sink.directory)
    assert "rita@example.com" in reminder["To"]
    text = reminder.get_body(preferencelist=("plain",)).get_content()
    assert "Krótka" not in text and "Short" not in text  # reminders never name the treatment


def test_a_reminder_held_up_until_its_visit_began_is_not_sent(private_pg, recording_stripe, sink,
                                                              start_app):
    pg = private_pg
    clinic = new_clinic(pg)
    begun = insert_booking(pg, clinic, "-5 minutes", "Late Larry", email="larry@example.com")
    coming = insert_booking(pg, clinic, "3 hours", "Early Erin", email="erin@example.com")
    # Both fell due while the mail server was away; the visit of one has begun since.
    for visit in (begun, coming):
        owner_sql(pg.owner, clinic.id, "select dentbook.enqueue_message(%s, 'reminder',"
                  " now() - interval '1 hour')", (visit,))
    start_app(_settings(pg, recording_stripe, sink.url))
    wait_for(lambda: owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.messages"
                               " where state = 'due'") == [(0,)], what="both handled")
    assert [m["To"] for m in _caught(sink.directory)] == ["Early Erin <erin@example.com>"]
    assert owner_sql(pg.owner, clinic.id, "select state from dentbook.messages"
                     " where booking_id = %s", (begun,)) == [("cancelled",)]


@pytest.mark.parametrize("hours", [1, 30])
def test_reminders_only_for_visits_booked_outside_the_offset(client, pg, clinic, stripe_local,
                                                             hours):
    visit = insert_booking(pg, clinic, f"{hours} hours", "Rex Early", email="rex@example.com")
    count = owner_sql(pg.owner, clinic.id, "select dentbook.schedule_reminders(%s)", (visit,))
    assert count == [(1 if hours > 24 else 0,)]
    # cancelling removes the due reminder with the visit, in one transaction
    owner_sql(pg.owner, clinic.id, "select dentbook.cancel_reminders(%s)", (visit,))
    assert owner_sql(pg.owner, clinic.id, "select count(*) from dentbook.jobs j join"
                     " dentbook.messages m on m.id = j.ref where m.booking_id = %s"
                     " and j.state = 'due'", (visit,)) == [(0,)]
