"""The running service: store, webhooks and timers, plus the one payment path.

The hosted page and the `/_test/` control endpoints both pay through `LocalStripe.pay`,
so what tests drive is exactly what a person clicking the page gets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

from dentbook.stripe_local.config import LocalStripeConfig
from dentbook.stripe_local.errors import StripeError, invalid
from dentbook.stripe_local.idempotency import Idempotency
from dentbook.stripe_local.methods import DELAYED, METHODS, TYPES, check_blik, check_card
from dentbook.stripe_local.objects import build_session, integer, refund_args
from dentbook.stripe_local.store import JSON, Store, now, public
from dentbook.stripe_local.webhooks import Dispatcher

if TYPE_CHECKING:
    from litestar import Request


class LocalStripe:
    """One in-memory Stripe account in test mode."""

    def __init__(self, config: LocalStripeConfig) -> None:
        self.config = config
        self.store = Store()
        self.idempotency = Idempotency()
        self.webhooks = Dispatcher(
            config.webhook_url,
            config.webhook_secret,
            tuple(config.webhook_retry_delays),
            config.api_version,
            config.webhook_timeout_seconds,
        )
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.webhooks.start()
        self._spawn(self._expiry_loop())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.webhooks.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # API operations -------------------------------------------------------------------

    def create_session(self, params: JSON) -> JSON:
        session, items, products = build_session(params, self.config)
        return public(self.store.add_session(session, items, products))

    def retrieve_session(self, session_id: str, expand: list[str]) -> JSON:
        session = self.store.session(session_id)
        shown = public(session)
        if "payment_intent" in expand and session["payment_intent"]:
            shown["payment_intent"] = dict(self.store.payment_intent(session["payment_intent"]))
        if "line_items" in expand:
            data = self.store.line_items[session_id]
            shown["line_items"] = {"object": "list", "data": data, "has_more": False,
                                   "url": f"/v1/checkout/sessions/{session_id}/line_items"}
        return shown

    def expire(self, session_id: str) -> JSON:
        """Close an open session and announce it, whether asked by the API or the timer."""
        session = self.store.session(session_id)
        self.store.expire(session)
        self.webhooks.emit("checkout.session.expired", public(session))
        return public(session)

    def expire_due(self) -> int:
        due = [s["id"] for s in self.store.sessions.values()
               if s["status"] == "open" and s["expires_at"] <= now()]
        for session_id in due:
            self.expire(session_id)
        return len(due)

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.expiry_poll_seconds)
            self.expire_due()

    def refund(self, params: JSON) -> JSON:
        pi_id, charge, amount, reason, meta = refund_args(params)
        if pi_id is None:
            pi_id = next((p["id"] for p in self.store.payment_intents.values()
                          if p["latest_charge"] == charge), None)
            if pi_id is None:
                raise StripeError(404, f"No such charge: '{charge}'", param="charge",
                                  code="resource_missing")
        return self.store.refund(pi_id, amount, reason, meta)

    def list_refunds(self, params: JSON) -> JSON:
        limit = integer(params, "limit") or 10
        if not 1 <= limit <= 100:
            raise invalid("Invalid limit: must be between 1 and 100", param="limit")
        pi_id = params.get("payment_intent")
        rows = [r for r in reversed(self.store.refunds)
                if pi_id in (None, "", r["payment_intent"])]
        return {"object": "list", "data": rows[:limit], "has_more": len(rows) > limit,
                "url": "/v1/refunds"}

    # Paying ---------------------------------------------------------------------------

    def pay(self, session_id: str, method: str, card: str = "", *, blik_code: str = "",
            force: bool = False) -> JSON:
        """Take a payment for the session; raises StripeError (402/410/400) when refused.

        `method` is one of `methods.METHODS`; `card` and `blik_code` are what the payer
        typed for those methods. `force` lets a payment land on a session that has already
        expired, which Stripe allows for payments begun before the deadline; dentbook must
        cope with that.
        """
        session = self.store.session(session_id)
        if method not in METHODS:
            raise invalid(f"method must be one of {', '.join(METHODS)}", param="method")
        if TYPES[method] not in session["payment_method_types"]:
            raise invalid(f"This Checkout Session does not offer {TYPES[method]}.",
                          param="method")
        if session["status"] == "open" and session["expires_at"] <= now() and not force:
            self.expire(session_id)
        if session["status"] == "complete":
            raise StripeError(410, "This Checkout Session is already complete.",
                              code="checkout_session_complete")
        if session["status"] == "expired" and not force:
            raise StripeError(410, "This Checkout Session has expired.",
                              code="checkout_session_expired")
        if method == "card":
            check_card(card)
        elif method == "blik":
            check_blik(blik_code)
        delayed = method in DELAYED
        self.store.complete(session, TYPES[method], delayed=delayed)
        self.webhooks.emit("checkout.session.completed", public(session))
        if delayed:
            self._spawn(self._settle_later(session_id, method != "delayed_failure"))
        return public(session)

    async def _settle_later(self, session_id: str, succeeded: bool) -> None:
        await asyncio.sleep(self.config.async_delay_seconds)
        session = self.store.session(session_id)
        if self.store.payment_intent(session["payment_intent"])["status"] != "processing":
            return
        self.store.settle(session, succeeded=succeeded)
        kind = "succeeded" if succeeded else "failed"
        self.webhooks.emit(f"checkout.session.async_payment_{kind}", public(session))


def of(request: Request[Any, Any, Any]) -> LocalStripe:
    """The service an app made by `create_app` serves."""
    return cast(LocalStripe, request.app.state.local_stripe)
