"""G1 through HTTP: many simultaneous attempts on one slot, one winner, the rest 409."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from datetime import datetime, timedelta

import httpx
import pytest

from helpers import csrf_token, form, free_starts, next_week, owner_sql, run_async


async def _race(url: str, cookies: httpx.Cookies, path: str,
                forms: list[dict[str, str]]) -> list[tuple[int, float]]:
    limits = httpx.Limits(max_connections=len(forms), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, cookies=cookies, limits=limits, timeout=60) as c:
        start = asyncio.Event()

        async def one(data: dict[str, str]) -> tuple[int, float]:
            await start.wait()
            t0 = time.perf_counter()
            r = await c.post(path, data=data)
            return r.status_code, time.perf_counter() - t0

        tasks = [asyncio.create_task(one(d)) for d in forms]
        await asyncio.sleep(0.05)
        start.set()
        return await asyncio.gather(*tasks)


def _active(pg, clinic, doctor) -> list[tuple]:
    return owner_sql(pg.owner, clinic.id,
                     "select lower(during), upper(during) from dentbook.bookings"
                     " where doctor_id = %s and status in ('pending', 'confirmed')", (doctor,))


def test_200_concurrent_attempts_on_one_slot_make_one_hold(client, server, pg, clinic):
    doctor, visit = clinic.doctors[0], clinic.visits["short"]
    start = free_starts(client, clinic.slug, doctor, visit, next_week(client, clinic.slug))[0]
    token = csrf_token(client, clinic.slug, doctor, visit, start)
    forms = [form(doctor, visit, start, token, email=f"p{i}@example.com") for i in range(200)]
    results = run_async(_race(server.url, client.cookies, f"/{clinic.slug}/bookings", forms))
    codes = [c for c, _ in results]
    assert codes.count(303) == 1, sorted(set(codes))
    assert codes.count(409) == 199
    assert len(_active(pg, clinic, doctor)) == 1
    lost = sorted(t for c, t in results if c == 409)
    print(f"race: 200 attempts, 1 winner, 409 p50={statistics.median(lost) * 1000:.0f} ms "
          f"p99={lost[int(len(lost) * 0.99) - 1] * 1000:.0f} ms")


@pytest.mark.parametrize("round_", range(3))
def test_overlapping_visits_of_different_lengths_race_the_same_way(client, server, pg, make_clinic,
                                                                   round_):
    clinic = make_clinic()
    doctor, short, long = clinic.doctors[0], clinic.visits["short"], clinic.visits["long"]
    week = next_week(client, clinic.slug)
    long_start = free_starts(client, clinic.slug, doctor, long, week)[2]  # e.g. 10:00
    # the 30-minute slots inside that 90-minute visit
    base = datetime.fromisoformat(long_start.replace("Z", "+00:00"))
    shorts = [(base + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ") for m in (0, 30, 60)]
    token = csrf_token(client, clinic.slug, doctor, short, shorts[0])
    forms = [form(doctor, long, long_start, token, email=f"l{i}@example.com") for i in range(30)]
    forms += [form(doctor, short, shorts[i % 3], token, email=f"s{i}@example.com") for i in range(60)]
    results = run_async(_race(server.url, client.cookies, f"/{clinic.slug}/bookings", forms))
    codes = [c for c, _ in results]
    active = _active(pg, clinic, doctor)
    # either the long visit won alone, or up to three short ones did; never an overlap
    assert codes.count(303) == len(active) and 1 <= len(active) <= 3
    assert codes.count(409) == len(forms) - len(active)
    spans = sorted(active)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
