"""The agenda's views: a day (columns = doctors, rows = time), one doctor's week (columns =
days) and the list, chosen and filtered in the URL, working without JavaScript; showing
patients' names is recorded as a read in the audit log."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from desk_helpers import desk, staff_id
from helpers import next_weekday, owner_sql

WARSAW = ZoneInfo("Europe/Warsaw")


def _at(pg, clinic, day, hour: int, minute: int = 0, minutes: int = 30, doctor: int = 0,
        name: str | None = "Pacjent Testowy", status: str = "confirmed", kind: str = "visit",
        hold: str = "1 hour") -> uuid.UUID:
    """A visit (or block) at a local wall-clock time, written as the owner."""
    start = datetime.combine(day, time(hour, minute), tzinfo=WARSAW)
    return owner_sql(pg.owner, clinic.id, """
        insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during, status,
            hold_expires_at, patient_name, patient_email, amount_minor, currency, kind, block_reason)
        values (%s, %s, %s, tstzrange(%s, %s), %s, now() + %s::interval, %s, %s, 5000, 'pln', %s,
                %s) returning id""",
                     (clinic.id, clinic.doctors[doctor],
                      clinic.visits["short"] if kind == "visit" else None, start,
                      start + timedelta(minutes=minutes), status, hold, name,
                      "p@example.com" if name else None, kind,
                      "Zebranie" if kind == "block" else None))[0][0]


def _cell_of(html: str, booking) -> str:
    """The timetable cell holding `booking`."""
    at = html.index(f'data-booking="{booking}"')
    return html[html.rindex("<td", 0, at):html.index("</td>", at)]


def _column_of(html: str, booking) -> int:
    """Which column (0 = the first after the times) holds `booking`."""
    at = html.index(f'data-booking="{booking}"')
    return html.count("<td", html.rindex("<tr>", 0, at), at) - 1


def _rows(html: str) -> list[str]:
    body = html[html.index('<table class="timetable">'):html.index("</table>")]
    return re.findall(r'<th scope="row"><time>(\d\d:\d\d)</time></th>', body)


def test_day_view_has_a_column_per_doctor_and_a_row_per_step(server, pg, make_clinic):
    clinic = make_clinic(doctors=2)
    day = next_weekday(7, 3)
    first = _at(pg, clinic, day, 9, 0, name="Anna Pierwsza")
    long = _at(pg, clinic, day, 11, 0, minutes=90, doctor=1, name="Długa Wizyta")
    block = _at(pg, clinic, day, 13, 15, minutes=45, name=None, kind="block")
    lapsed = _at(pg, clinic, day, 14, 0, name="Wygasła Blokada", status="pending",
                 hold="-1 minute")
    held = _at(pg, clinic, day, 15, 0, name="Czeka Na Płatność", status="pending")
    cancelled = _at(pg, clinic, day, 10, 0, name="Odwołana", status="cancelled")
    with desk(server, pg, clinic, role="viewer") as d:
        page = d.get("", view="day", date=day.isoformat())
        assert page.status_code == 200
        html = page.text
        assert 'data-view="day"' in html
        heads = re.findall(r'<th scope="col" data-column="([0-9a-f-]{36})-', html)
        assert [uuid.UUID(h) for h in heads] == clinic.doctors  # by name: dr Test 0, 1
        rows = _rows(html)
        assert rows[0] == "09:00" and rows[-1] == "16:30" and len(rows) == 16
        assert 'data-status="confirmed"' in _cell_of(html, first)
        assert "Anna Pierwsza" in _cell_of(html, first)
        # The 90-minute visit shows once, at its start, and covers the two rows after it.
        assert html.count(f'data-booking="{long}"') == 1
        assert "11:00–12:30" in _cell_of(html, long)
        # Blocked time at an odd minute: in the row it starts in, shown as a block.
        assert 'data-kind="block"' in _cell_of(html, block) and "13:15–14:00" in html
        assert f'data-booking="{held}"' in html  # a hold still being paid takes the time
        assert f'data-booking="{lapsed}"' not in html and f'data-booking="{cancelled}"' not in html
        covered = re.findall(r'<td class="open covered">', html)
        assert len(covered) == 2 + 1  # the long visit's two rows, the block's second row
        # One doctor only.
        one = d.get("", view="day", date=day.isoformat(), doctor=clinic.doctors[1]).text
        assert f'data-booking="{long}"' in one and f'data-booking="{first}"' not in one
        # Earlier, later, today, and the live stream of this very view.
        assert f'date={(day - timedelta(days=1)).isoformat()}' in html
        assert f'date={(day + timedelta(days=1)).isoformat()}' in html
        stream = re.search(r'sse-connect="([^"]+)"', html).group(1)
        assert "view=day" in stream and f"date={day.isoformat()}" in stream


def test_week_view_is_one_doctors_week(server, pg, make_clinic):
    clinic = make_clinic(doctors=2)
    wednesday = next_weekday(7, 3)
    mine = _at(pg, clinic, wednesday, 10, doctor=1, name="Środa Wizyta")
    theirs = _at(pg, clinic, wednesday, 10, doctor=0, name="Inny Lekarz")
    saturday = _at(pg, clinic, wednesday + timedelta(days=3), 10, doctor=1, name="Sobota Extra")
    with desk(server, pg, clinic) as d:
        html = d.get("", view="week", date=wednesday.isoformat(), doctor=clinic.doctors[1]).text
        days = re.findall(r'data-column="[0-9a-f-]{36}-(\d{4}-\d{2}-\d{2})"', html)
        monday = wednesday - timedelta(days=2)
        # Monday to Friday, and Saturday only because something is booked on it.
        assert days == [(monday + timedelta(days=i)).isoformat() for i in (0, 1, 2, 3, 4, 5)]
        assert f'data-booking="{mine}"' in html and f'data-booking="{saturday}"' in html
        assert f'data-booking="{theirs}"' not in html
        assert _column_of(html, mine) == 2  # Wednesday
        # Reception is offered the free cells of that doctor.
        assert f'data-doctor="{clinic.doctors[1]}"' in html
        assert f'data-doctor="{clinic.doctors[0]}"' not in html
        # Without a doctor: the first one, shown as chosen.
        default = d.get("", view="week", date=wednesday.isoformat()).text
        assert default.count("data-column=") == 5
        assert f'date={(wednesday - timedelta(days=7)).isoformat()}' in default


def test_entries_outside_the_hours_extend_the_day(server, pg, clinic):
    day = next_weekday(7, 2)
    early = _at(pg, clinic, day, 7, 30, name="Ranny Ptaszek")
    with desk(server, pg, clinic, role="viewer") as d:
        html = d.get("", view="day", date=day.isoformat()).text
        rows = _rows(html)
        assert rows[0] == "07:30" and "Ranny Ptaszek" in _cell_of(html, early)
        assert '<td class="shut">' in html  # before opening: not bookable


def test_a_day_off_shows_the_doctor_not_working(server, pg, clinic):
    day = next_weekday(7, 4)
    owner_sql(pg.owner, clinic.id, "insert into dentbook.days_off (tenant_id, doctor_id, day)"
              " values (%s, %s, %s)", (clinic.id, clinic.doctors[0], day))
    with desk(server, pg, clinic) as d:
        html = d.get("", view="day", date=day.isoformat()).text
        assert 'class="off"' in html and "data-free=" not in html


def test_a_doctor_no_longer_active_offers_no_time_and_shows_only_with_visits(
        server, pg, make_clinic):
    clinic = make_clinic(doctors=2)
    day = next_weekday(7, 3)
    gone = clinic.doctors[1]
    owner_sql(pg.owner, clinic.id, "update dentbook.doctors set active = false where id = %s"
              " returning 1", (gone,))
    with desk(server, pg, clinic) as d:
        html = d.get("", view="day", date=day.isoformat()).text
        heads = re.findall(r'<th scope="col" data-column="([0-9a-f-]{36})-', html)
        assert [uuid.UUID(h) for h in heads] == [clinic.doctors[0]]
        assert f'data-doctor="{clinic.doctors[0]}"' in html  # the active one is bookable
        # Listed last in the filter, marked, so their visits can still be found.
        options = re.findall(r'<option value="([0-9a-f-]{36})"[^>]*>([^<]*)</option>', html)
        assert [uuid.UUID(o) for o, _ in options] == clinic.doctors
        assert options[1][1].endswith("(nieaktywny)")
        left = _at(pg, clinic, day, 10, doctor=1, name="Zostala Wizyta")
        html = d.get("", view="day", date=day.isoformat()).text
        assert f'data-booking="{left}"' in html and f'data-column="{gone}-' in html
        assert f'data-doctor="{gone}"' not in html  # nothing offered under them
        week = d.get("", view="week", date=day.isoformat(), doctor=gone).text
        assert f'data-booking="{left}"' in week and f'data-doctor="{gone}"' not in week


def test_the_list_pages_through_every_visit_and_drops_none(server, pg, make_clinic):
    clinic = make_clinic()
    made = {row[0] for row in owner_sql(pg.owner, clinic.id, """
        insert into dentbook.bookings (tenant_id, doctor_id, visit_type_id, during, status,
            hold_expires_at, patient_name, patient_email, amount_minor, currency)
        select %s, %s, %s, tstzrange(t, t + interval '30 minutes'), 'confirmed', now(),
               'Pacjent ' || n, 'p' || n || '@example.com', 5000, 'pln'
        from generate_series(1, 230) n,
             lateral (select date_trunc('hour', now()) + interval '2 days'
                             + n * interval '30 minutes' as t) s
        returning id""", (clinic.id, clinic.doctors[0], clinic.visits["short"]))}
    seen: list[str] = []
    with desk(server, pg, clinic, role="viewer") as d:
        page = d.get("", view="list")
        for number in (1, 2, 3):
            html = page.text
            shown = re.findall(r'<tr id="booking-[^"]+" data-booking="([^"]+)"', html)
            assert len(shown) == (100 if number < 3 else 30)
            assert "data-pages" in html and "230" in html  # "a–b of 230", never cut silently
            seen += shown
            later = re.search(r'<a rel="next" href="([^"]+)"', html)
            if number < 3:
                page = d.http.get(later.group(1).replace("&amp;", "&"))
            else:
                assert later is None
    assert len(seen) == len(set(seen)) == 230 and {uuid.UUID(b) for b in seen} == made


def test_bad_views_and_dates_are_refused_cleanly(server, pg, clinic):
    with desk(server, pg, clinic, role="viewer") as d:
        for params, code in (({"view": "month"}, "invalid_view"),
                             ({"date": "2025-02-30"}, "invalid_date"),
                             ({"view": "day", "date": "yesterday"}, "invalid_date"),
                             ({"page": "0"}, "invalid_page")):
            r = d.get("", **params)
            assert r.status_code == 400 and f'data-error="{code}"' in r.text, params
        # An unknown `done` is simply not said.
        r = d.get("", done="<script>")
        assert r.status_code == 200 and "data-done" not in r.text and "<script>" not in r.text


def test_the_list_shows_blocks_and_links_each_entry(server, pg, clinic):
    day = next_weekday(7, 3)
    visit = _at(pg, clinic, day, 9, name="Lista Wizyta")
    block = _at(pg, clinic, day, 10, name=None, kind="block")
    with desk(server, pg, clinic, role="viewer") as d:
        html = d.get("", date=day.isoformat()).text
        assert f'data-booking="{visit}" data-status="confirmed" data-kind="visit"' in html
        assert f'data-booking="{block}" data-status="confirmed" data-kind="block"' in html
        assert f"/staff/bookings/{visit}" in html and f"/staff/bookings/{block}" in html


def test_showing_names_is_a_read_in_the_audit_log(server, pg, clinic):
    day = next_weekday(7, 3)
    _at(pg, clinic, day, 9, name="Czytana Osoba")
    reads = ("select staff_id, detail, booking_id, before, after from dentbook.audit_log"
             " where action = 'read' order by id")
    with desk(server, pg, clinic, role="viewer") as d:
        signed_in_reads = len(owner_sql(pg.owner, clinic.id, reads))  # the landing list
        empty = (day + timedelta(days=1)).isoformat()
        d.get("", view="day", date=empty)  # nothing shown: nothing read
        d.get("", view="day", date=day.isoformat(), doctor=clinic.doctors[0])
        found = owner_sql(pg.owner, clinic.id, reads)[signed_in_reads:]
        assert len(found) == 1
        who, detail, booking, before, after = found[0]
        assert detail == (f"agenda view=day date={day.isoformat()} doctor={clinic.doctors[0]}"
                          " show=default page=1")
        assert who == staff_id(pg, clinic, d.email)
        assert booking is None and before is None and after is None
        assert "Czytana" not in detail
        audit = d.get("/audit").text
        assert 'data-action="read"' in audit and d.email in audit
