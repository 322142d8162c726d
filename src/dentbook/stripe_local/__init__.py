"""A local, in-memory stand-in for the parts of Stripe dentbook uses.

It speaks Stripe's wire format (form-encoded requests, JSON objects, signed webhooks), so
the official `stripe` library works against it unchanged via
`StripeClient(key, base_addresses={"api": "http://127.0.0.1:PORT"})`.
"""

from __future__ import annotations

from dentbook.stripe_local.app import create_app
from dentbook.stripe_local.config import ConfigError, LocalStripeConfig
from dentbook.stripe_local.service import LocalStripe
from dentbook.stripe_local.webhooks import sign

__all__ = ["ConfigError", "LocalStripe", "LocalStripeConfig", "create_app", "sign"]
