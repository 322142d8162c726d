"""The front desk's actions through HTTP against the real database: what each one writes
(the visit or block, the patient's e-mails and reminders, the audit row in the same
transaction), what it refuses and how it says so (409 naming the conflict, 422 with the
values kept), and that a refusal changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from desk_helpers import audit_rows, desk, done, row, slots, snapshot, staff_id
from helpers import owner_sql
from staff_helpers import insert_booking

WARSAW = ZoneInfo("Europe/Warsaw")


def _at(iso: str, minutes: int = 0) -> str:
    """An ISO start shifted by `minutes` (UTC, as slot links carry it)."""
    t = datetime.fromisoformat(iso.replace("Z", "+00:00")) + timedelta(minutes=minutes)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(iso: str, minutes: int = 0) -> str:
    """The same instant as `<input type="datetime-local">` sends it (Warsaw wall clock)."""
    t = datetime.fromisoformat(iso.replace("Z", "+00:00")) + timedelta(minutes=minutes)
    return t.astimezone(WARSAW).strftime("%Y-%m-%dT%H:%M")


def _messages(pg, clinic, booking) -> list[tuple]:
    return owner_sql(pg.owner, clinic.id, "select kind, state, to_address, sequence from"
                     " dentbook.messages where booking_id = %s order by id", (booking,))


def test_phone_booking_is_confirmed_without_a_deposit_and_audited(client, server, pg, clinic):
    start = slots(client, clinic)[3]
    with desk(server, pg, clinic) as d:
        r = d.book(clinic.doctors[0], clinic.visits["short"], start, note="Boli ząb  po lewej")
        day, what, booking = done(r)
        assert what == "booked"
        b = row(pg, clinic, booking)
        assert (b["status"], b["kind"], b["source"], b["amount_minor"]) == (
            "confirmed", "visit", "phone", 0)
        assert (b["name"], b["phone"], b["email"], b["note"]) == (
            "Jan Telefon", "+48 600 700 800", None, "Boli ząb po lewej")
        assert b["start"] == datetime.fromisoformat(start.replace("Z", "+00:00"))
        assert b["reference"] and len(b["reference"]) == 10
        assert b["created_by"] == staff_id(pg, clinic, d.email)
        # No e-mail address: nothing to send, no reminders.
        assert _messages(pg, clinic, booking) == []
        # The audit row: who (this account), what, after; never the patient's data.
        [(action, actor, who, detail, _, to, before, after)] = audit_rows(pg, clinic, booking)
        assert (action, actor, who, detail, to) == (
            "created", "staff", staff_id(pg, clinic, d.email), "booked by phone", "confirmed")
        assert before is None and after["status"] == "confirmed"
        assert set(after) == {"status", "doctor", "start", "end", "attendance"}
        # The agenda it returns to shows it, on its day, with what was done.
        page = d.http.get(r.headers["location"])
        assert f'data-booking="{booking}" data-status="confirmed"' in page.text
        assert 'data-done="booked"' in page.text and day in r.headers["location"]
        # The public calendar no longer offers the time.
        assert start not in slots(client, clinic)


def test_phone_booking_with_an_email_queues_the_confirmation_and_reminders(
        client, server, pg, clinic):
    start = slots(client, clinic)[0]
    with desk(server, pg, clinic, role="admin") as d:
        _, _, booking = done(d.book(clinic.doctors[0], clinic.visits["long"], _local(start),
                                    email="ewa@example.com"))
    b = row(pg, clinic, booking)
    # A wall-clock time was read in the clinic's zone; the visit type's length applies.
    assert b["start"] == datetime.fromisoformat(start.replace("Z", "+00:00"))
    assert b["end"] - b["start"] == timedelta(minutes=90)
    kinds = [m[0] for m in _messages(pg, clinic, booking)]
    assert kinds[0] == "confirmation" and kinds.count("confirmation") == 1
    assert kinds[1:] == ["reminder"]  # the clinic's default: 24 h before
    jobs = owner_sql(pg.owner, clinic.id, "select kind, due_at from dentbook.jobs"
                     " where booking_id = %s order by id", (booking,))
    assert [k for k, _ in jobs] == ["email", "email"]
    assert jobs[1][1] == b["start"] - timedelta(hours=24)


def test_phone_form_errors_keep_what_was_typed(client, server, pg, clinic):
    start = slots(client, clinic)[1]
    with desk(server, pg, clinic) as d:
        before = snapshot(pg, clinic)
        r = d.book(clinic.doctors[0], clinic.visits["short"], "tomorrow-ish", name="",
                   phone="abc", email="not-an-address", note="Pilne")
        assert r.status_code == 422
        for field in ("start", "name", "phone", "email"):
            assert f'data-field-error="{field}"' in r.text, field
        assert 'value="Pilne"' in r.text and 'value="not-an-address"' in r.text
        assert "Please enter the patient&#39;s phone number." in r.text or \
            "numer telefonu pacjenta" in r.text
        # Not on the clinic's grid (a quarter past): refused, with the typed values.
        r = d.book(clinic.doctors[0], clinic.visits["short"], _at(start, 15), name="Ola Nowa")
        assert r.status_code == 422 and 'data-error="desk_not_offered"' in r.text
        assert 'value="Ola Nowa"' in r.text
        # In the past.
        r = d.book(clinic.doctors[0], clinic.visits["short"], "2020-01-07T09:00:00Z")
        assert r.status_code == 422 and 'data-error="desk_not_offered"' in r.text
        assert snapshot(pg, clinic) == before


def test_a_taken_time_is_refused_naming_the_visit_it_collides_with(client, server, pg, clinic):
    start = slots(client, clinic, visit="long")[0]
    with desk(server, pg, clinic) as d:
        _, _, first = done(d.book(clinic.doctors[0], clinic.visits["long"], start,
                                  name="Pierwsza Pacjentka"))
        before = snapshot(pg, clinic)
        # Thirty minutes into the 90-minute visit.
        r = d.book(clinic.doctors[0], clinic.visits["short"], _at(start, 30), name="Druga Osoba")
        assert r.status_code == 409 and 'data-error="slot_taken"' in r.text
        assert f'data-conflict="{first}"' in r.text and "Pierwsza Pacjentka" in r.text
        assert 'value="Druga Osoba"' in r.text
        assert snapshot(pg, clinic) == before


def test_blocks_and_visits_exclude_each_other_both_ways(client, server, pg, clinic):
    free = slots(client, clinic)
    with desk(server, pg, clinic) as d:
        _, _, visit = done(d.book(clinic.doctors[0], clinic.visits["short"], free[4],
                                  name="Wanda Wizyta"))
        before = snapshot(pg, clinic)
        # A block over the visit is refused, naming it.
        r = d.block(clinic.doctors[0], _at(free[4], -30), _at(free[4], 60))
        assert r.status_code == 409 and f'data-conflict="{visit}"' in r.text
        assert "Wanda Wizyta" in r.text
        assert snapshot(pg, clinic) == before
        # A block beside it is fine (local wall-clock times, as the form sends them).
        _, what, blocked = done(d.block(clinic.doctors[0], _local(free[0]), _local(free[0], 60),
                                        reason="Przerwa"))
        assert what == "blocked"
        b = row(pg, clinic, blocked)
        assert (b["kind"], b["status"], b["name"], b["visit_type"], b["block_reason"]) == (
            "block", "confirmed", None, None, "Przerwa")
        assert [a[0] for a in audit_rows(pg, clinic, blocked)] == ["block"]
        # Nothing is booked over the block: by phone (409 naming blocked time)...
        r = d.book(clinic.doctors[0], clinic.visits["short"], _at(free[0], 30))
        assert r.status_code == 409 and f'data-conflict="{blocked}"' in r.text
        assert "Przerwa" in r.text
        # ... nor online: the public grid no longer offers it.
        left = slots(client, clinic)
        assert free[0] not in left and free[1] not in left
        # Removing the block gives the time back, once.
        r = d.post(f"/blocks/{blocked}/delete")
        assert done(r)[1] == "unblocked"
        assert row(pg, clinic, blocked)["status"] == "cancelled"
        assert free[0] in slots(client, clinic)
        again = d.post(f"/blocks/{blocked}/delete")
        assert again.status_code == 409 and 'data-error="wrong_state"' in again.text
        # A visit is not a block.
        assert d.post(f"/blocks/{visit}/delete").status_code == 404
        assert row(pg, clinic, visit)["status"] == "confirmed"


def test_block_form_refuses_empty_past_and_long_blocks(client, server, pg, clinic):
    start = slots(client, clinic)[0]
    with desk(server, pg, clinic) as d:
        before = snapshot(pg, clinic)
        for end, code in ((_at(start, 0), "invalid_end"), (_at(start, -30), "invalid_end"),
                          (_at(start, 9 * 60), "block_too_long")):
            r = d.block(clinic.doctors[0], start, end)
            assert r.status_code == 422, end
            assert f'data-field-error="end" data-message="{code}"' in r.text, end
        r = d.block(clinic.doctors[0], "2020-01-01T10:00", "2020-01-01T11:00")
        assert r.status_code == 422
        assert 'data-field-error="end" data-message="invalid_end"' in r.text
        r = d.block(clinic.doctors[0], start, _at(start, 60), reason="")
        assert r.status_code == 422 and 'data-field-error="reason"' in r.text
        assert snapshot(pg, clinic) == before


def test_move_is_atomic_and_tells_the_patient(client, server, pg, clinic):
    free = slots(client, clinic)
    with desk(server, pg, clinic) as d:
        _, _, visit = done(d.book(clinic.doctors[0], clinic.visits["short"], free[2],
                                  email="mo@example.com", name="Marek Mover"))
        _, _, other = done(d.book(clinic.doctors[0], clinic.visits["short"], free[5],
                                  name="Olga Other"))
        before = snapshot(pg, clinic)
        # Onto another visit: refused, naming it; the visit stays where it was.
        r = d.post(f"/bookings/{visit}/move", {"start": free[5]})
        assert r.status_code == 409 and f'data-conflict="{other}"' in r.text
        assert "Olga Other" in r.text
        assert snapshot(pg, clinic) == before
        # To where it already is.
        r = d.post(f"/bookings/{visit}/move", {"start": free[2]})
        assert r.status_code == 422
        assert 'data-field-error="start" data-message="same_time"' in r.text
        # To a free time: moved, the old time free at once, the sequence raised, the
        # reminder re-planned and the patient told.
        r = d.post(f"/bookings/{visit}/move", {"start": _local(free[7])})
        assert done(r)[1] == "moved"
        b = row(pg, clinic, visit)
        assert b["start"] == datetime.fromisoformat(free[7].replace("Z", "+00:00"))
        assert b["sequence"] == 1
        left = slots(client, clinic)
        assert free[2] in left and free[7] not in left
        sent = _messages(pg, clinic, visit)
        # (States of the messages to send now are the mail sender's; reminders are ours.)
        assert [(k, seq) for k, _, _, seq in sent if k != "reminder"] == [
            ("confirmation", 0), ("reschedule", 1)]
        assert [state for k, state, _, _ in sent if k == "reminder"] == ["cancelled", "due"]
        moved = audit_rows(pg, clinic, visit)[-1]
        assert moved[0] == "moved" and moved[3] == "moved by the clinic"
        assert moved[6]["start"] != moved[7]["start"]


def test_move_to_another_doctor(client, server, pg, make_clinic):
    clinic = make_clinic(doctors=2)
    free = slots(client, clinic)
    with desk(server, pg, clinic) as d:
        _, _, visit = done(d.book(clinic.doctors[0], clinic.visits["short"], free[0]))
        r = d.post(f"/bookings/{visit}/move", {"start": free[0],
                                               "doctor_id": str(clinic.doctors[1])})
        assert done(r)[1] == "moved"
        assert row(pg, clinic, visit)["doctor"] == clinic.doctors[1]
        assert free[0] in slots(client, clinic, doctor=0)
        assert free[0] not in slots(client, clinic, doctor=1)


def test_cancel_needs_a_reason_and_frees_the_time(client, server, pg, clinic):
    start = slots(client, clinic)[1]
    with desk(server, pg, clinic) as d:
        _, _, visit = done(d.book(clinic.doctors[0], clinic.visits["short"], start,
                                  email="kasia@example.com"))
        before = snapshot(pg, clinic)
        r = d.post(f"/bookings/{visit}/cancel", {"reason": "   "})
        assert r.status_code == 422 and 'data-field-error="reason"' in r.text
        assert snapshot(pg, clinic) == before
        r = d.post(f"/bookings/{visit}/cancel", {"reason": "Lekarz chory"})
        assert done(r)[1] == "cancelled"
        b = row(pg, clinic, visit)
        assert (b["status"], b["cancelled_by"], b["cancel_reason"], b["sequence"]) == (
            "cancelled", "clinic", "Lekarz chory", 1)
        assert start in slots(client, clinic)
        sent = _messages(pg, clinic, visit)
        assert [(k, seq) for k, _, _, seq in sent if k != "reminder"] == [
            ("confirmation", 0), ("cancellation", 1)]
        assert [state for k, state, _, _ in sent if k == "reminder"] == ["cancelled"]
        # The reason stays on the visit, never in the append-only log.
        last = audit_rows(pg, clinic, visit)[-1]
        assert (last[0], last[3], last[5]) == ("status", "cancelled by the clinic", "cancelled")
        assert "chory" not in str(last)
        # Once.
        again = d.post(f"/bookings/{visit}/cancel", {"reason": "Jeszcze raz"})
        assert again.status_code == 409 and 'data-error="wrong_state"' in again.text
        assert row(pg, clinic, visit)["cancel_reason"] == "Lekarz chory"


def test_attendance_only_from_half_an_hour_before(client, server, pg, clinic):
    soon = insert_booking(pg, clinic, "20 minutes", "Ania Zaraz", email="ania@example.com")
    later = insert_booking(pg, clinic, "3 hours", "Bartek Potem")
    with desk(server, pg, clinic) as d:
        before = snapshot(pg, clinic)
        r = d.post(f"/bookings/{later}/attendance", {"state": "arrived"})
        assert r.status_code == 409 and 'data-error="too_early"' in r.text
        r = d.post(f"/bookings/{soon}/attendance", {"state": "late"})
        assert r.status_code == 422 and 'data-field-error="state"' in r.text
        assert snapshot(pg, clinic) == before
        for state in ("arrived", "completed"):
            assert done(d.post(f"/bookings/{soon}/attendance", {"state": state}))[1] == "attendance"
            assert row(pg, clinic, soon)["attendance"] == state
        actions = [(a[0], a[3]) for a in audit_rows(pg, clinic, soon)][1:]  # after "created"
        assert actions == [("attendance", "marked arrived"), ("attendance", "marked completed")]
        # An attended visit can no longer be moved or cancelled.
        r = d.post(f"/bookings/{soon}/cancel", {"reason": "x"})
        assert r.status_code == 409 and 'data-error="wrong_state"' in r.text
        # A patient who did not come, marked over HTTP as reception does. Over before `soon`
        # begins: starts are rounded to the minute, so a visit from 10 minutes ago would
        # overlap `soon` whenever a minute has turned since that was written.
        absent = insert_booking(pg, clinic, "-40 minutes", "Celina Nieobecna")
        assert done(d.post(f"/bookings/{absent}/attendance", {"state": "no_show"}))[1] == "attendance"
        assert row(pg, clinic, absent)["attendance"] == "no_show"
        assert audit_rows(pg, clinic, absent)[-1][3] == "marked no-show"


def test_no_shows_are_counted_per_patient_by_email_or_phone(client, server, pg, clinic):
    past = [insert_booking(pg, clinic, f"-{d} days", "Nina Nieobecna", email="nina@example.com",
                           phone=None) for d in (10, 20)]
    by_phone = insert_booking(pg, clinic, "-30 days", "N. Nieobecna", email="inna@example.com",
                              phone="600 111 222")
    upcoming = insert_booking(pg, clinic, "2 days", "Nina Nieobecna", email="Nina@Example.com",
                              phone="+48 600-111-222")
    stranger = insert_booking(pg, clinic, "2 days 1 hour", "Ktoś Inny", email="x@example.com",
                              phone="+48 500 000 000")
    with desk(server, pg, clinic) as d:
        for b in (*past, by_phone):
            owner_sql(pg.owner, clinic.id, "update dentbook.bookings set attendance = 'no_show'"
                      " where id = %s", (b,))
        page = d.get("")
        assert page.status_code == 200
        text = page.text
        mine = text[text.index(f'data-booking="{upcoming}"'):]
        mine = mine[:mine.index("</tr>")]
        assert 'data-no-shows="3"' in mine
        theirs = text[text.index(f'data-booking="{stranger}"'):]
        assert "data-no-shows" not in theirs[:theirs.index("</tr>")]
        visit = d.get(f"/bookings/{upcoming}")
        assert 'data-no-shows="3"' in visit.text


def test_the_visit_page_shows_actions_to_reception_only(client, server, pg, clinic):
    visit = insert_booking(pg, clinic, "2 days", "Pola Podgląd")
    with desk(server, pg, clinic, role="viewer") as v:
        page = v.get(f"/bookings/{visit}")
        assert page.status_code == 200 and "Pola Podgląd" in page.text
        assert 'data-form="move"' not in page.text and 'data-form="cancel"' not in page.text
    with desk(server, pg, clinic) as d:
        page = d.get(f"/bookings/{visit}")
        assert 'data-form="move"' in page.text and 'data-form="cancel"' in page.text
        assert 'data-form="attendance"' not in page.text  # two days away
    reads = owner_sql(pg.owner, clinic.id, "select booking_id from dentbook.audit_log"
                      " where action = 'read' and detail = %s", (f"visit {visit}",))
    assert reads == [(visit,), (visit,)]  # linked to the visit: the patient's export lists them


def test_now_is_used_for_the_window(client, server, pg, clinic):
    """A phone booking more than a year ahead is refused like any time not offered."""
    far = (datetime.now(UTC) + timedelta(days=400)).replace(hour=9, minute=0, second=0,
                                                            microsecond=0)
    with desk(server, pg, clinic) as d:
        r = d.book(clinic.doctors[0], clinic.visits["short"], far.strftime("%Y-%m-%dT%H:%M:%SZ"))
        assert r.status_code == 422 and 'data-error="desk_not_offered"' in r.text
