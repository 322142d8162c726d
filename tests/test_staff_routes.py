"""Every staff route carries a role guard (dentbook.web.guards), except the few doors that
must open without a session; a new route that forgets its guard fails here."""

from __future__ import annotations

from dentbook.app import create_app
from dentbook.web.guards import admin, reception, viewer
from helpers import app_settings

# The doors to signing in and out: each checks what it needs itself.
UNGUARDED = {
    "staff_login", "staff_login_submit",  # the sign-in form
    "staff_login_code", "staff_login_code_submit",  # its second step (a pending sign-in)
    "staff_logout", "staff_signout_all",  # end this session / all of them (the cookie's own)
    "staff_invite", "staff_invite_submit",  # an invitation's one-time link
}


def test_every_staff_route_has_a_role_guard_but_the_doors_to_signing_in(pg):
    app = create_app(app_settings(pg))
    guarded, doors = set(), set()
    for route in app.routes:
        if "/staff" not in route.path:
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.name is None:  # Litestar's own OPTIONS answer
                continue
            guards = set(handler.resolve_guards())
            if guards & {viewer, reception, admin}:
                guarded.add(handler.name)
            else:
                doors.add(handler.name)
    assert doors == UNGUARDED
    assert {"staff_dashboard", "staff_events", "desk_book", "settings_retention_save",
            "patients", "patients_erase", "staff_audit"} <= guarded
