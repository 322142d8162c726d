"""Every change made at the front desk reaches open public calendars and open dashboards
live (the bookings trigger's NOTIFY, over real SSE), in each dashboard's own view."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from dentbook.staff import COOKIE as STAFF_COOKIE
from desk_helpers import desk, done, slots
from helpers import SseClient, next_week, wait_for
from staff_helpers import add_staff, signed_in


def _since(sse: SseClient, mark: int, text: str) -> bool:
    return any(text in data for _, data in sse.messages[mark:])


def _latest(sse: SseClient) -> str:
    return sse.messages[-1][1] if sse.messages else ""


def test_phone_booking_block_move_and_cancel_are_live_everywhere(client, server, pg, clinic):
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    week = next_week(client, clinic.slug)
    free = slots(client, clinic)
    day = datetime.fromisoformat(free[0].replace("Z", "+00:00")).astimezone(
        ZoneInfo("Europe/Warsaw")).date().isoformat()
    calendar = SseClient(f"{server.url}/{clinic.slug}/events?doctor={doctor}&visit={visit}"
                         f"&week={week}")
    with httpx.Client(base_url=server.url, timeout=30) as other:
        token = signed_in(other, clinic.slug, add_staff(pg, clinic, role="viewer"))
        cookie = {"Cookie": f"{STAFF_COOKIE}={token}"}
        listing = SseClient(f"{server.url}/{clinic.slug}/staff/events", headers=cookie)
        timetable = SseClient(f"{server.url}/{clinic.slug}/staff/events?view=day&date={day}",
                              headers=cookie)
        streams = (calendar, listing, timetable)
        try:
            for s in streams:
                wait_for(lambda s=s: s.messages, what="first state")
            assert 'id="agenda"' in _latest(timetable) and 'data-view="day"' in _latest(timetable)
            assert 'id="appointments"' in _latest(listing)
            with desk(server, pg, clinic) as d:
                # By phone: taken on the calendar, on both dashboards.
                _, _, booked = done(d.book(doctor, visit, free[0], name="Live Telefon"))
                calendar.wait_state(free[0], "taken")
                for s in (listing, timetable):
                    wait_for(lambda s=s: f'data-booking="{booked}"' in _latest(s),
                             what="the phone booking on a dashboard")
                assert "Live Telefon" in _latest(timetable)
                # A viewer's stream carries no front-desk links.
                assert "data-free=" not in _latest(timetable)

                # Blocked time.
                _, _, blocked = done(d.block(doctor, free[2], free[4], reason="Serwis"))
                calendar.wait_state(free[2], "taken")
                calendar.wait_state(free[3], "taken")
                for s in (listing, timetable):
                    wait_for(lambda s=s: f'data-booking="{blocked}"' in _latest(s),
                             what="the block on a dashboard")
                assert 'data-kind="block"' in _latest(timetable)

                # Moved: the old time free, the new one taken.
                done(d.post(f"/bookings/{booked}/move", {"start": free[6]}))
                calendar.wait_state(free[0], "free")
                calendar.wait_state(free[6], "taken")
                wait_for(lambda: f'datetime="{free[6].replace("Z", "+00:00")}"' in
                         _latest(timetable).split(f'data-booking="{booked}"')[-1][:400],
                         what="the moved visit at its new time")

                # Cancelled: free again, gone from the dashboards.
                mark = len(listing.messages)
                done(d.post(f"/bookings/{booked}/cancel", {"reason": "Pacjent prosił"}))
                calendar.wait_state(free[6], "free")
                wait_for(lambda: len(listing.messages) > mark
                         and f'data-booking="{booked}"' not in _latest(listing),
                         what="the cancelled visit leaving the list")
                wait_for(lambda: f'data-booking="{booked}"' not in _latest(timetable),
                         what="the cancelled visit leaving the day")

                # The block removed: its time free again.
                done(d.post(f"/blocks/{blocked}/delete"))
                calendar.wait_state(free[2], "free")
                wait_for(lambda: f'data-booking="{blocked}"' not in _latest(timetable),
                         what="the block leaving the day")
        finally:
            for s in streams:
                s.close()


def test_reception_streams_carry_the_front_desk_links(client, server, pg, clinic):
    free = slots(client, clinic)
    day = datetime.fromisoformat(free[0].replace("Z", "+00:00")).astimezone(
        ZoneInfo("Europe/Warsaw")).date().isoformat()
    with desk(server, pg, clinic) as d:
        token = d.http.cookies.get(STAFF_COOKIE, path=f"/{clinic.slug}/staff")
        sse = SseClient(f"{server.url}/{clinic.slug}/staff/events?view=day&date={day}",
                        headers={"Cookie": f"{STAFF_COOKIE}={token}"})
        try:
            wait_for(lambda: sse.messages, what="first state")
            assert f'data-free="{free[0]}"' in _latest(sse)
            done(d.book(clinic.doctors[0], clinic.visits["short"], free[0]))
            wait_for(lambda: f'data-free="{free[0]}"' not in _latest(sse), what="cell taken")
            assert f'data-free="{free[1]}"' in _latest(sse)
        finally:
            sse.close()
