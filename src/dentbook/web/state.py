"""What the whole app shares (the pool, the clinics' cache, the shared week grids, the
settings, the Stripe client, the live streams, the dev inbox, the route addresses), typed.

A handler or a clinic-entry dependency reads it as `state: AppState`, a parameter Litestar
fills from the app itself, not as a dependency of its own: Litestar resolves a route's
independent dependencies concurrently in a task group for every request, and for these
constants that cost more than the request's own work (a lost race's answer: about 14 %,
measured with `bench --only race`; litestar-org/litestar#4563). So a route's dependencies
form a chain (`web.deps`) and the app-wide objects are not among them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.datastructures import State

if TYPE_CHECKING:
    import stripe

    from dentbook.db import Database
    from dentbook.live.grids import Grids
    from dentbook.live.hub import Live
    from dentbook.mail.inbox import MailInbox
    from dentbook.metrics import Metrics
    from dentbook.settings import Settings
    from dentbook.tenancy import Clinics
    from dentbook.web.urls import Urls


class AppState(State):
    db: Database
    clinics: Clinics
    grids: Grids
    settings: Settings
    stripe_client: stripe.StripeClient
    live: Live
    mail_inbox: MailInbox | None
    metrics: Metrics
    urls: Urls
