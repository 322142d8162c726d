"""BENCH-ONLY variant of the app: the product, unchanged, except that its Stripe client is a
stub that returns a Checkout Session at once without any network call.

The app has no switch to book without Stripe; this variant measures the rest of the booking
path (form parsing, CSRF, validation, the hold transaction, attaching the session id in a
second transaction, the 303) so the cost of the Stripe round trip shows as the difference.
Never used outside bench/: `uvicorn bench.nostripe:create_app --factory --workers 2`.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import stripe
from litestar import Litestar

import dentbook.app
from dentbook.settings import Settings, load_settings

_ids = itertools.count()


async def _create(params: dict[str, Any], options: Any = None) -> SimpleNamespace:
    sid = f"cs_bench_{next(_ids)}_{str(params['client_reference_id'])[:8]}"
    return SimpleNamespace(id=sid, url=f"http://127.0.0.1:9/c/pay/{sid}")


async def _expire(session_id: str, options: Any = None) -> SimpleNamespace:
    return SimpleNamespace(id=session_id, status="expired")


def _stub_client(settings: Settings) -> stripe.StripeClient:
    """A real StripeClient (the app's handlers check the type) whose two Checkout calls
    answer at once, in process; nothing else of it is used by the booking path."""
    client = stripe.StripeClient(settings.stripe_secret_key)
    sessions: Any = client.v1.checkout.sessions
    sessions.create_async = _create
    sessions.expire_async = _expire
    return client


def create_app() -> Litestar:
    dentbook.app.make_client = _stub_client
    return dentbook.app.create_app(load_settings())
