"""Entering a clinic: the dependencies every clinic route takes, in one place.

`{slug}` is resolved once (an unknown clinic is the localized 404, raised here), and a
handler gets a connection whose transaction is already at the right trust level with the
clinic — and for staff, the signed-in account — set for that transaction only. The
transaction commits when the response is ready and rolls back if the handler fails.
Handlers never open transactions or touch the pool themselves; work that needs several
transactions (a Stripe call between two) takes `clinic_db` and lets the domain code open
them.

The dependencies form a chain where they can (clinic, then clinic_db, then locale, then a
transaction): Litestar resolves the dependencies of one level of the graph concurrently, in
a task group per request, which costs more than these dependencies themselves (see
`web.state`). The app-wide objects are read from `state: AppState`, not resolved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from dentbook.db import Conn, Level
from dentbook.staff import StaffUser
from dentbook.tenancy import Clinic, ClinicDb
from dentbook.web.guards import signed_in_staff
from dentbook.web.render import request_locale
from dentbook.web.state import AppState


async def provide_clinic(slug: FromPath[str], state: AppState) -> Clinic:
    return await state.clinics.get(slug)


def provide_clinic_db(clinic: NamedDependency[Clinic], state: AppState) -> ClinicDb:
    return ClinicDb(state.db, clinic)


def provide_locale(request: Request[Any, Any, Any], clinic_db: NamedDependency[ClinicDb]) -> str:
    # After clinic_db, not beside it: see the module's note on chains.
    return request_locale(request, clinic_db.clinic.default_locale)


async def provide_anon_tx(clinic_db: NamedDependency[ClinicDb]) -> AsyncIterator[Conn]:
    """Patients' level: the public functions only."""
    async with clinic_db.transaction(Level.ANON) as conn:
        yield conn


async def provide_service_tx(clinic_db: NamedDependency[ClinicDb]) -> AsyncIterator[Conn]:
    """The server acting for itself (sign-in, sign-out)."""
    async with clinic_db.transaction(Level.SERVICE) as conn:
        yield conn


def provide_staff(request: Request[Any, Any, Any]) -> StaffUser:
    """The account a guard on this route has already checked."""
    return signed_in_staff(request)


async def provide_staff_tx(clinic_db: NamedDependency[ClinicDb],
                           staff_user: NamedDependency[StaffUser]) -> AsyncIterator[Conn]:
    """Staff level for the signed-in account: reads under row level security, and the
    account set for the transaction so SQL functions check its role themselves."""
    async with clinic_db.transaction(Level.STAFF, staff_user.id) as conn:
        yield conn


CLINIC = {
    "clinic": Provide(provide_clinic),
    "clinic_db": Provide(provide_clinic_db, sync_to_thread=False),
    "locale": Provide(provide_locale, sync_to_thread=False),
    "anon_tx": Provide(provide_anon_tx),
    "service_tx": Provide(provide_service_tx),
    "staff_user": Provide(provide_staff, sync_to_thread=False),
    "staff_tx": Provide(provide_staff_tx),
}
