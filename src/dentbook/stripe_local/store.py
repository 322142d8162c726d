"""In-memory Stripe objects and their state changes.

Objects are kept as plain JSON-shaped dicts because the wire format *is* the model here:
what is stored is exactly what the API returns and what webhooks carry.
"""

from __future__ import annotations

import copy
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from dentbook.stripe_local.errors import invalid, missing

JSON = dict[str, Any]
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24, *, test: bool = True) -> str:
    """A Stripe-looking id; test-mode objects carry `_test_` like dentbook's fixtures expect."""
    middle = "_test_" if test else "_"
    return prefix + middle + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def now() -> int:
    return int(time.time())


@dataclass
class Store:
    """All objects of one running service; single event loop, so no locking inside."""

    sessions: dict[str, JSON] = field(default_factory=dict)
    line_items: dict[str, list[JSON]] = field(default_factory=dict)
    products: dict[str, JSON] = field(default_factory=dict)
    payment_intents: dict[str, JSON] = field(default_factory=dict)
    refunds: list[JSON] = field(default_factory=list)

    def session(self, session_id: str) -> JSON:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise missing("checkout.session", session_id) from None

    def payment_intent(self, pi_id: str, param: str = "id") -> JSON:
        try:
            return self.payment_intents[pi_id]
        except KeyError:
            raise missing("payment_intent", pi_id, param) from None

    def add_session(self, session: JSON, items: list[JSON], products: list[JSON]) -> JSON:
        self.sessions[session["id"]] = session
        self.line_items[session["id"]] = items
        self.products.update((p["id"], p) for p in products)
        return session

    def product_of(self, item: JSON) -> JSON:
        """The product a line item's price was made for (from its `product_data`)."""
        return self.products[item["price"]["product"]]

    def expire(self, session: JSON) -> None:
        if session["status"] != "open":
            raise invalid('Only Checkout Sessions with a status in ["open"] can be expired.')
        session["status"] = "expired"
        session["url"] = None

    def complete(self, session: JSON, method_type: str, *, delayed: bool) -> JSON:
        """Close the session as paid (card, BLIK) or awaiting funds (Przelewy24, transfer).

        `method_type` is Stripe's payment method type the intent was paid with.
        """
        pi: JSON = {
            "id": new_id("pi"),
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": 0,
            "currency": session["currency"],
            "status": "processing",
            "latest_charge": None,
            "last_payment_error": None,
            "metadata": copy.deepcopy(session["_pi_metadata"]),
            "created": now(),
            "livemode": False,
            "capture_method": "automatic",
            "payment_method_types": [method_type],
            "description": None,
        }
        self.payment_intents[pi["id"]] = pi
        session.update(status="complete", url=None, payment_intent=pi["id"])
        session["customer_details"] = {"email": session["customer_email"], "name": None}
        if not delayed:
            self.settle(session, succeeded=True)
        return pi

    def settle(self, session: JSON, *, succeeded: bool) -> None:
        """Funds arrived (or did not) for the session's payment intent."""
        pi = self.payment_intent(session["payment_intent"])
        if succeeded:
            pi.update(
                status="succeeded", amount_received=pi["amount"], latest_charge=new_id("ch")
            )
            session["payment_status"] = "paid"
        else:
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = {
                "type": "invalid_request_error",
                "code": "payment_intent_payment_attempt_failed",
                "message": "The bank transfer did not arrive.",
            }

    def refunded(self, pi_id: str) -> int:
        return sum(r["amount"] for r in self.refunds if r["payment_intent"] == pi_id)

    def refund(self, pi_id: str, amount: int | None, reason: str | None, meta: JSON) -> JSON:
        pi = self.payment_intent(pi_id, "payment_intent")
        if pi["status"] != "succeeded":
            raise invalid(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        left = pi["amount_received"] - self.refunded(pi_id)
        if left <= 0:
            raise invalid(
                f"Charge {pi['latest_charge']} has already been refunded.",
                code="charge_already_refunded",
            )
        if amount is None:
            amount = left
        if amount > left:
            raise invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({left})",
                param="amount",
                code="amount_too_large",
            )
        refund: JSON = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": pi["currency"],
            "payment_intent": pi_id,
            "charge": pi["latest_charge"],
            "status": "succeeded",
            "reason": reason,
            "metadata": meta,
            "created": now(),
        }
        self.refunds.append(refund)
        return refund


def public(session: JSON) -> JSON:
    """The session as the API shows it, without the service's private keys."""
    return {k: copy.deepcopy(v) for k, v in session.items() if not k.startswith("_")}

