"""One rendered week grid per (clinic, doctor, visit type, week, language), shared by every
request and every live stream of this process until a change makes it stale.

A grid is read from the database and rendered once; the grid fragment, the clinic page, a
lost race's answer and the cells sent over SSE all use that rendering. It is forgotten
when its doctor's calendar changes (the same NOTIFY that feeds the streams, heard by every
process), when the clinic's setup changes (hours, days off, doctors, visit types), and
when time alone would change it (a slot passing the minimum notice, a hold lapsing, a new
day). A load that raced with a change is not kept: a generation per doctor says whether a
change was heard while it ran. The number of grids kept is bounded (least recently used).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from jinja2 import Environment

from dentbook.availability import Calendar, load_calendar, monday_of
from dentbook.db import Database, Level
from dentbook.settings import Settings
from dentbook.tenancy import Clinic, Doctor, VisitType, list_doctors, list_visit_types
from dentbook.web.render import render_fragment

GridKey = tuple[UUID, UUID, UUID, date, str]  # clinic, doctor, visit type, Monday, language


@dataclass(frozen=True)
class Grid:
    calendar: Calendar
    html: str  # fragments/grid.html with nothing chosen
    etag: str
    valid_until: datetime

    @property
    def fresh(self) -> bool:
        return datetime.now(UTC) < self.valid_until


@dataclass(frozen=True)
class Menu:
    """A clinic's doctors and visit types, as the public functions list them."""

    doctors: list[Doctor]
    visits: list[VisitType]


class Grids:
    def __init__(self, db: Database, settings: Settings, env: Environment,
                 size: int = 2000) -> None:
        self.db, self.settings, self.env, self.size = db, settings, env, size
        self._grids: OrderedDict[GridKey, Grid] = OrderedDict()
        self._menus: dict[UUID, Menu] = {}
        self._loading: dict[GridKey, asyncio.Future[Grid]] = {}
        # Bumped by every change heard, so a load that ran across one is not kept.
        self._epoch = 0
        self._clinic_generation: dict[UUID, int] = {}
        self._generation: dict[tuple[UUID, UUID], int] = {}
        self.hits = self.misses = 0

    async def get(self, clinic: Clinic, doctor: UUID | None, visit: UUID | None,
                  week: date | None, locale: str) -> Grid:
        """The grid a page asks for (defaults: the first doctor and visit type, this week);
        NotFound for a doctor or visit type that is not the clinic's."""
        menu = await self._menu(clinic)
        monday = self._monday(clinic, week)
        if doctor is None and menu.doctors:
            doctor = menu.doctors[0].id
        if visit is None and menu.visits:
            visit = menu.visits[0].id
        if doctor is None or visit is None:  # a clinic with nothing to book yet
            return await self._load(clinic, doctor, visit, monday, locale)
        key: GridKey = (clinic.id, doctor, visit, monday, locale)
        found = self._grids.get(key)
        if found is not None and found.fresh:
            self._grids.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        loading = self._loading.get(key)
        if loading is not None:  # a crowd asking at once costs one read and one render
            return await asyncio.shield(loading)
        future: asyncio.Future[Grid] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = self._generations(clinic.id, doctor)
        try:
            grid = await self._load(clinic, doctor, visit, monday, locale)
            future.set_result(grid)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters get it, nobody logs it as lost
            raise
        finally:
            del self._loading[key]
        if self._generations(clinic.id, doctor) == generation:  # no change heard meanwhile
            self._grids[key] = grid
            if len(self._grids) > self.size:
                self._grids.popitem(last=False)
        return grid

    def stats(self) -> tuple[int, int, int]:
        """Lookups answered from the cache, lookups that were not, grids kept now."""
        return self.hits, self.misses, len(self._grids)

    def changed(self, tenant: UUID, doctor: UUID) -> None:
        """A booking of this doctor changed: their grids are stale in this process."""
        self._generation[(tenant, doctor)] = self._generation.get((tenant, doctor), 0) + 1
        for key in [k for k in self._grids if k[0] == tenant and k[1] == doctor]:
            del self._grids[key]

    def clinic_changed(self, tenant: UUID | None = None) -> None:
        """The clinic's setup changed (or, with None, anything may have): forget its grids."""
        if tenant is None:
            self._epoch += 1
            self._grids.clear()
            self._menus.clear()
            return
        self._clinic_generation[tenant] = self._clinic_generation.get(tenant, 0) + 1
        for key in [k for k in self._grids if k[0] == tenant]:
            del self._grids[key]
        self._menus.pop(tenant, None)

    def _generations(self, tenant: UUID, doctor: UUID | None = None) -> tuple[int, int, int]:
        return (self._epoch, self._clinic_generation.get(tenant, 0),
                self._generation.get((tenant, doctor), 0) if doctor else 0)

    def _monday(self, clinic: Clinic, week: date | None) -> date:
        today = datetime.now(UTC).astimezone(clinic.zone).date()
        first = monday_of(today)
        last = first + timedelta(weeks=self.settings.max_weeks_ahead)
        return min(max(monday_of(week or today), first), last)

    async def _menu(self, clinic: Clinic) -> Menu:
        found = self._menus.get(clinic.id)
        if found is None:
            generation = self._generations(clinic.id)
            async with self.db.transaction(Level.ANON, clinic.id) as conn:
                found = Menu(await list_doctors(conn), await list_visit_types(conn))
            if self._generations(clinic.id) == generation:
                self._menus[clinic.id] = found
        return found

    async def _load(self, clinic: Clinic, doctor: UUID | None, visit: UUID | None,
                    monday: date, locale: str) -> Grid:
        now = datetime.now(UTC)
        notice = timedelta(minutes=self.settings.min_notice_minutes)
        async with self.db.transaction(Level.ANON, clinic.id) as conn:
            cal = await load_calendar(conn, clinic, doctor, visit, monday, now, notice,
                                      self.settings.max_weeks_ahead)
        html = render_fragment(self.env, "fragments/grid.html", locale, cal=cal, clinic=clinic,
                               chosen=None)
        return Grid(cal, html, '"' + hashlib.sha256(html.encode()).hexdigest()[:32] + '"',
                    _valid_until(cal, now, notice, clinic))


def _valid_until(cal: Calendar, now: datetime, notice: timedelta, clinic: Clinic) -> datetime:
    """When time alone changes the grid: its first slot passes the minimum notice, a hold in
    it lapses, or the clinic's day ends (the first week offered may move on)."""
    tomorrow = datetime.combine(now.astimezone(clinic.zone).date() + timedelta(days=1),
                                datetime.min.time(), tzinfo=clinic.zone)
    moments = [tomorrow.astimezone(UTC)]
    if cal.week is not None:
        starts = [s.start for d in cal.week.days for s in d.slots]
        if starts:
            moments.append(min(starts) - notice)
        moments += [expires for _, _, expires in cal.week.holds]
    return min(moments)
