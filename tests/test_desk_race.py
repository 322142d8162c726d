"""G1 with the front desk in the race: reception booking a time by phone while 50 patients
race for it online ends with exactly one holder. And money: the clinic cancelling a paid
visit refunds the whole deposit through Stripe, once, after the commit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from desk_helpers import desk, done, row, slots
from helpers import book_and_pay, csrf_token, form, owner_sql, wait_for

PATIENTS = 50


def _active(pg, clinic, start: str) -> list[tuple]:
    return owner_sql(pg.owner, clinic.id,
                     "select id, source from dentbook.bookings where status in ('pending',"
                     " 'confirmed') and lower(during) = %s::timestamptz", (start,))


@pytest.mark.parametrize("round_", range(3))
def test_phone_against_fifty_patients_online_makes_one_holder(client, server, pg, make_clinic,
                                                             round_):
    clinic = make_clinic()
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    start = slots(client, clinic)[round_]
    token = csrf_token(client, clinic.slug, doctor, visit, start)
    gate = threading.Barrier(PATIENTS + 1)
    with desk(server, pg, clinic) as d:
        def patient(i: int) -> str:
            with httpx.Client(base_url=server.url, cookies=client.cookies, timeout=60) as c:
                data = form(doctor, visit, start, token, email=f"racer{i}@example.com")
                gate.wait()
                r = c.post(f"/{clinic.slug}/bookings", data=data)
            return "won" if r.status_code == 303 else str(r.status_code)

        def reception() -> str:
            gate.wait()
            r = d.book(doctor, visit, start, name="Przez Telefon")
            return "won" if r.status_code == 303 else str(r.status_code)

        with ThreadPoolExecutor(PATIENTS + 1) as pool:
            online = [pool.submit(patient, i) for i in range(PATIENTS)]
            phone = pool.submit(reception)
            results = [f.result() for f in online] + [phone.result()]
    assert results.count("won") == 1, sorted(set(results))
    assert results.count("409") == PATIENTS
    holders = _active(pg, clinic, start)
    assert len(holders) == 1
    assert holders[0][1] == ("phone" if phone.result() == "won" else "online")


def test_cancelling_a_paid_visit_refunds_it_in_full_once(client, server, pg, clinic, stripe_local):
    paid, _ = book_and_pay(client, pg, clinic, stripe_local, email="paid@example.com",
                           name="Paula Płacąca")
    intent, visit = paid["stripe_payment_intent_id"], paid["id"]
    with desk(server, pg, clinic) as d:
        page = d.get(f"/bookings/{visit}")
        assert "50,00" in page.text  # the refund the form promises
        assert done(d.post(f"/bookings/{visit}/cancel", {"reason": "Awaria sprzętu"}))[1] == \
            "cancelled"
        # Double submits and a second try are refused; they owe nothing more.
        for _ in range(3):
            assert d.post(f"/bookings/{visit}/cancel", {"reason": "Znowu"}).status_code == 409
    wait_for(lambda: owner_sql(pg.owner, clinic.id, "select refunded_at from dentbook.refunds"
                               " where booking_id = %s", (visit,))[0][0] is not None,
             timeout=30, what="refund made")
    refunds = stripe_local.refunds(intent)
    assert [(x["amount"], x["status"]) for x in refunds] == [(paid["amount_minor"], "succeeded")]
    assert owner_sql(pg.owner, clinic.id, "select amount_minor, reason from dentbook.refunds"
                     " where booking_id = %s", (visit,)) == [(paid["amount_minor"], "cancelled")]
    jobs = owner_sql(pg.owner, clinic.id, "select state from dentbook.jobs where booking_id = %s"
                     " and kind = 'refund'", (visit,))
    assert jobs == [("done",)]
    b = row(pg, clinic, visit)
    assert (b["status"], b["cancelled_by"]) == ("cancelled", "clinic")
    trail = owner_sql(pg.owner, clinic.id, "select actor, detail from dentbook.audit_log"
                      " where booking_id = %s and action <> 'read' order by id", (visit,))
    assert ("staff", "cancelled by the clinic") in trail
    assert len(stripe_local.refunds(intent)) == 1
