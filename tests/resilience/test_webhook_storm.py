"""Webhook storm: every event of a set of bookings delivered many times, shuffled and
concurrently, to two server processes. The outcome must equal one ordered delivery:
paid → confirmed, expired → expired, delayed → confirmed/failed, paid after the hold
lapsed → refunded exactly once; and no 5xx."""

from __future__ import annotations

import httpx
import pytest

from helpers import (
    AppProcess,
    app_settings,
    booking_row,
    hold_sessions,
    new_clinic,
    owner_sql,
    wait_for,
    webhook_storm,
)

COPIES = 8


@pytest.fixture
def two_processes(private_pg, recording_stripe, start_app):
    """A local Stripe that only records events, app process A (thread) and B (subprocess)."""
    a = start_app(app_settings(private_pg, **recording_stripe.app_settings(), max_holds_per_ip=100))
    b = AppProcess(private_pg.app, recording_stripe.url).start()
    yield recording_stripe, a, b.url
    b.stop()


def test_storm_settles_like_one_ordered_delivery(private_pg, two_processes):
    stripe, a, b_url = two_processes
    pg = private_pg
    clinic = new_clinic(pg)
    plan = ["paid", "paid", "expired", "delayed_success", "delayed_failure", "late", "late"]
    with httpx.Client(base_url=a.url, timeout=30) as client:
        sessions = dict(zip(hold_sessions(client, clinic, len(plan), "s"), plan, strict=True))
    for session, kind in sessions.items():
        if kind == "expired":
            stripe.http.post(f"/_test/sessions/{session}/expire_now")
        elif kind == "late":
            owner_sql(pg.owner, clinic.id, "update dentbook.bookings set hold_expires_at = now()"
                      " - interval '1 second' where stripe_session_id = %s", (session,))
            stripe.pay(session, force=True)
        elif kind.startswith("delayed"):
            stripe.pay(session, method=kind)
        else:
            stripe.pay(session)
    wanted = {"checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed"}
    wait_for(lambda: len({e["type"] for e in stripe.events() if e["type"] in wanted}) == 2,
             what="delayed outcomes recorded")
    events = [e["event"] for e in stripe.events()
              if e["event"]["data"]["object"]["id"] in sessions]
    assert len(events) == 9  # 2 paid + 1 expired + 2×2 delayed + 2 late
    assert all(e["delivered"] is False for e in stripe.events())  # nothing delivered yet

    answers = webhook_storm(events, [a.url, b_url], COPIES, seed=7)
    codes = {r.status_code for r in answers}
    assert codes == {200}, sorted(codes)

    expected = {"paid": "confirmed", "expired": "expired", "delayed_success": "confirmed",
                "delayed_failure": "failed", "late": "refunded"}
    for session, kind in sessions.items():
        if kind == "late":  # the refund is made after the commit, by a job
            wait_for(lambda s=session: booking_row(pg.owner, clinic.id, s)["status"] == "refunded",
                     what="the refund job")
        row = booking_row(pg.owner, clinic.id, session)
        assert row["status"] == expected[kind], (kind, row["status"])
        if kind == "late":
            refunds = stripe.refunds(row["stripe_payment_intent_id"])
            assert len(refunds) == 1 and row["paid_after_expiry"]
    # the audit trail has each transition once: replays added nothing
    trail = owner_sql(pg.owner, clinic.id, "select booking_id, from_status, to_status, detail"
                      " from dentbook.audit_log")
    assert len(trail) == len(set(trail))
    most = {"paid": 2, "expired": 2, "delayed_success": 3, "delayed_failure": 3, "late": 3}
    for session, kind in sessions.items():
        booking = booking_row(pg.owner, clinic.id, session)["id"]
        assert sum(1 for t in trail if t[0] == booking) <= most[kind], kind
    print(f"storm: {len(answers)} deliveries of {len(events)} events to 2 processes, "
          f"{len(sessions)} bookings checked, 0 non-200")
