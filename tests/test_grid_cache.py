"""The shared week grid: one rendering per (clinic, doctor, visit type, week, language) in
each process, answered with 304 when the browser has it, and never older than the last
change that process has heard of — a hold, a clinic's new hours, in this process or another."""

from __future__ import annotations

import re

import httpx

from helpers import AppProcess, book, free_starts, next_week, owner_sql, wait_for


def _grid(client, clinic, week, **headers):
    return client.get(f"/{clinic.slug}/slots", headers=headers, params={
        "doctor": str(clinic.doctors[0]), "visit": str(clinic.visits["short"]), "week": week})


def _state(html: str, start: str) -> str | None:
    m = re.search(rf'data-start="{re.escape(start)}" data-state="(\w+)"', html)
    return m.group(1) if m else None


def test_the_fragment_has_an_etag_and_answers_304_until_it_changes(client, server, clinic):
    week = next_week(client, clinic.slug)
    first = _grid(client, clinic, week)
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag
    same = _grid(client, clinic, week, **{"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    grids = server.app.state.live.grids
    hits = grids.hits
    assert _grid(client, clinic, week).text == first.text  # served from the shared grid
    assert grids.hits > hits
    start = free_starts(client, clinic.slug, clinic.doctors[0], clinic.visits["short"], week)[0]
    r, _ = book(client, clinic, start=start)
    assert r.status_code == 303
    changed = wait_for(lambda: (lambda g: g if g.status_code == 200 else None)(
        _grid(client, clinic, week, **{"If-None-Match": etag})), what="a new grid")
    assert changed.headers["etag"] != etag and _state(changed.text, start) == "taken"


def test_another_process_serves_no_grid_older_than_a_change_it_heard_of(client, pg, clinic,
                                                                       stripe_local):
    other = AppProcess(pg.app, stripe_local.url).start()
    try:
        week = next_week(client, clinic.slug)
        start = free_starts(client, clinic.slug, clinic.doctors[0], clinic.visits["short"], week)[1]
        with httpx.Client(base_url=other.url, timeout=30) as b:
            assert _state(_grid(b, clinic, week).text, start) == "free"  # B keeps this grid
            r, _ = book(client, clinic, start=start)  # through the suite's server (A)
            assert r.status_code == 303
            wait_for(lambda: _state(_grid(b, clinic, week).text, start) == "taken",
                     what="B's grid after A's hold")
    finally:
        other.stop()


def test_new_working_hours_reach_the_shared_grid(client, pg, clinic):
    week = next_week(client, clinic.slug)
    before = _grid(client, clinic, week).text
    assert "data-slot" in before
    # the clinic closes that doctor on Tuesdays (an admin's change, here as the owner)
    owner_sql(pg.owner, clinic.id, "delete from dentbook.working_hours where doctor_id = %s"
              " and weekday = 2 returning 1", (clinic.doctors[0],))
    wait_for(lambda: _grid(client, clinic, week).text.count("data-slot") < before.count("data-slot"),
             what="the grid without Tuesday")
