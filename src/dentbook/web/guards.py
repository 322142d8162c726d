"""Staff guards: one per role, on the routes that need it.

A guard checks the session cookie against the clinic in the address (another clinic's
session simply does not exist there), keeps the account on the request for the route's
dependencies, and compares roles. Not signed in here — anonymous or another clinic's
staff — is `NotSignedIn`; signed in with too low a role is `Forbidden`; an admin who must
enrol a second factor first is `MustEnrol` on every route but the enrolment page's (opt
`ENROLMENT`). `web/errors.py` turns each into its one answer. The SQL functions that write
check the role again.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from dentbook import staff
from dentbook.staff import Forbidden, MustEnrol, NotSignedIn, Role, StaffUser
from dentbook.tenancy import ClinicDb

_KEY = "dentbook_staff"
# Routes an admin who must enrol a second factor may still use (the enrolment itself).
ENROLMENT = {"enrolment": True}


async def _check(connection: ASGIConnection[Any, Any, Any, Any]) -> StaffUser:
    known = connection.scope.get("state", {}).get(_KEY)
    if isinstance(known, StaffUser):
        return known
    state = connection.app.state
    clinic = await state.clinics.get(connection.path_params["slug"])
    user = await staff.current_staff(ClinicDb(state.db, clinic), state.settings,
                                     connection.cookies.get(staff.COOKIE))
    if user is None:
        raise NotSignedIn()
    connection.scope.setdefault("state", {})[_KEY] = user
    return user


def requires(role: Role) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        user = await _check(connection)
        if user.must_enrol and not handler.opt.get("enrolment"):
            raise MustEnrol()
        if not user.may(role):
            raise Forbidden()

    guard.__name__ = f"requires_{role.name.lower()}"
    return guard


viewer = requires(Role.VIEWER)
reception = requires(Role.RECEPTION)
admin = requires(Role.ADMIN)


def signed_in_staff(connection: ASGIConnection[Any, Any, Any, Any]) -> StaffUser:
    """The account a guard checked for this request."""
    user = connection.scope.get("state", {}).get(_KEY)
    if not isinstance(user, StaffUser):
        raise NotSignedIn()  # a route that takes `staff` without a guard: refuse, never guess
    return user
