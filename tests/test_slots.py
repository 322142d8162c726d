"""Slot generation: schedules, days off, durations that must fit, DST weeks, the past and
the minimum notice; and the database's re-validation agrees with the Python grid."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from dentbook.availability import Hours, build_week, local_instant, monday_of, offered_starts
from dentbook.tenancy import Clinic, VisitType

WARSAW = ZoneInfo("Europe/Warsaw")
NINE_TO_FIVE = [Hours(d, time(9), time(17)) for d in range(1, 6)]


def _transition(after: date, forward: bool) -> date:
    """The next day on which Warsaw springs forward (or falls back) after `after`."""
    d = after
    for _ in range(800):
        d += timedelta(days=1)
        before = datetime.combine(d, time(0), tzinfo=WARSAW).utcoffset()
        later = datetime.combine(d, time(12), tzinfo=WARSAW).utcoffset()
        if before != later and (later > before) == forward:  # type: ignore[operator]
            return d
    raise AssertionError("no DST transition found")


TODAY = datetime.now(UTC).date()
SPRING = _transition(TODAY, forward=True)
AUTUMN = _transition(TODAY, forward=False)
CLINIC = Clinic(uuid.uuid4(), "x", "X", "Europe/Warsaw", "pl", "pln", 30, "", "", "", 24, 0)


def _visit(minutes: int) -> VisitType:
    return VisitType(uuid.uuid4(), "W", "V", minutes, 5000)


def test_grid_is_nine_to_five_in_half_hours():
    day = monday_of(TODAY) + timedelta(days=8)  # a Tuesday
    starts = offered_starts(day, NINE_TO_FIVE, 30, 30, WARSAW)
    assert len(starts) == 16
    assert starts[0].astimezone(WARSAW).time() == time(9)
    assert starts[-1].astimezone(WARSAW).time() == time(16, 30)


def test_long_visits_must_fit_inside_working_hours():
    day = monday_of(TODAY) + timedelta(days=8)
    starts = offered_starts(day, NINE_TO_FIVE, 30, 90, WARSAW)
    assert starts[-1].astimezone(WARSAW).time() == time(15, 30)
    split = [Hours(day.isoweekday(), time(9), time(11)), Hours(day.isoweekday(), time(12), time(13))]
    local = [s.astimezone(WARSAW).time() for s in offered_starts(day, split, 30, 60, WARSAW)]
    assert local == [time(9), time(9, 30), time(10), time(12)]


def test_weekend_has_no_slots():
    saturday = monday_of(TODAY) + timedelta(days=12)
    assert offered_starts(saturday, NINE_TO_FIVE, 30, 30, WARSAW) == []


@pytest.mark.parametrize("day", [SPRING, AUTUMN], ids=["spring-forward", "fall-back"])
def test_dst_change_week_keeps_wall_clock_hours(day):
    week = build_week(monday_of(day), CLINIC, _visit(30),
                      [Hours(d, time(9), time(17)) for d in range(1, 8)], set(), [],
                      datetime(2000, 1, 1, tzinfo=UTC), timedelta(0), monday_of(day),
                      monday_of(day))
    for d in week.days:
        local = [s.start.astimezone(WARSAW) for s in d.slots]
        assert local[0].time() == time(9) and local[-1].time() == time(16, 30), d.day
        assert len(local) == 16
    offsets = {s.start.astimezone(WARSAW).utcoffset() for d in week.days for s in d.slots}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}


def test_local_instant_matches_postgresql_in_gap_and_overlap(pg):
    cases = [(SPRING, time(2, 30)), (AUTUMN, time(2, 30)), (SPRING, time(9)), (AUTUMN, time(9))]
    with psycopg.connect(pg.owner) as conn:
        for day, wall in cases:
            db = conn.execute("select (%s::date + %s::time) at time zone 'Europe/Warsaw'",
                              (day, wall)).fetchone()[0]
            assert local_instant(day, wall, WARSAW) == db, (day, wall)


def test_past_and_minimum_notice_are_not_offered():
    monday = monday_of(TODAY) + timedelta(days=7)
    tuesday = monday + timedelta(days=1)
    now = local_instant(tuesday, time(10, 10), WARSAW)
    week = build_week(monday, CLINIC, _visit(30), NINE_TO_FIVE, set(), [], now,
                      timedelta(hours=2), monday, monday)
    assert week.days[0].slots == ()
    first = week.days[1].slots[0].start.astimezone(WARSAW).time()
    assert first == time(12, 30)


def test_days_off_and_busy_intervals():
    monday = monday_of(TODAY) + timedelta(days=7)
    taken = local_instant(monday + timedelta(days=2), time(10), WARSAW)
    week = build_week(monday, CLINIC, _visit(60), NINE_TO_FIVE, {monday}, [
        (taken, taken + timedelta(minutes=30))], datetime(2000, 1, 1, tzinfo=UTC),
        timedelta(0), monday, monday)
    assert week.days[0].day_off and week.days[0].slots == ()
    states = {s.start.astimezone(WARSAW).time(): s.state for s in week.days[2].slots}
    # a 60-minute visit at 9:30 would overlap 10:00-10:30; so would 10:00; 10:30 is free
    assert states[time(9)] == "free"
    assert states[time(9, 30)] == "taken" and states[time(10)] == "taken"
    assert states[time(10, 30)] == "free"


def _offered(conn, doctor, start: datetime, minutes: int, notice: str = "2 hours") -> bool:
    return conn.execute(
        "select dentbook.slot_is_offered(%s, tstzrange(%s, %s), %s::interval)",
        (doctor, start, start + timedelta(minutes=minutes), notice)).fetchone()[0]


@pytest.mark.parametrize("day", [SPRING, AUTUMN], ids=["spring-forward", "fall-back"])
def test_database_agrees_with_the_grid_in_dst_weeks(pg, make_clinic, day):
    c = make_clinic(hours="mon-sun 09:00-17:00")
    with psycopg.connect(pg.owner) as conn:
        conn.execute("set role dentbook_owner")
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(c.id),))
        for d in (day - timedelta(days=1), day, day + timedelta(days=1)):
            hours = [Hours(d.isoweekday(), time(9), time(17))]
            for start in offered_starts(d, hours, 30, 90, WARSAW):
                assert _offered(conn, c.doctors[0], start, 90), start
            last = offered_starts(d, hours, 30, 90, WARSAW)[-1]
            assert not _offered(conn, c.doctors[0], last + timedelta(minutes=30), 90)
            assert not _offered(conn, c.doctors[0], last - timedelta(minutes=15), 90)


def test_database_rejects_off_grid_closed_day_off_and_too_soon(pg, make_clinic):
    c = make_clinic()
    tuesday = monday_of(TODAY) + timedelta(days=8)
    nine = local_instant(tuesday, time(9), WARSAW)
    with psycopg.connect(pg.owner) as conn:
        conn.execute("set role dentbook_owner")
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(c.id),))
        doc = c.doctors[0]
        assert _offered(conn, doc, nine, 30)
        assert not _offered(conn, doc, nine + timedelta(minutes=10), 30)  # off the grid
        assert not _offered(conn, doc, nine - timedelta(minutes=30), 30)  # before opening
        assert not _offered(conn, doc, local_instant(tuesday + timedelta(days=4), time(9), WARSAW), 30)
        assert not _offered(conn, doc, nine, 30, notice=f"{9 * 24} hours")  # inside notice
        assert not _offered(conn, doc, datetime(2020, 1, 7, 8, tzinfo=UTC), 30)  # past
        conn.execute("insert into dentbook.days_off (tenant_id, doctor_id, day) values (%s, %s, %s)",
                     (c.id, doc, tuesday))
        assert not _offered(conn, doc, nine, 30)
