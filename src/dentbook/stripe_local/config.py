"""Settings of the local Stripe-compatible service, checked once at construction."""

from __future__ import annotations

from dataclasses import dataclass


class ConfigError(ValueError):
    """The configuration cannot be used; the message says why."""


# How `dentbook serve` hands secrets to `python -m dentbook.stripe_local`: a child's
# environment is readable only by its user, its command line by everyone (`ps`).
ENV_API_KEY = "DENTBOOK_LOCAL_STRIPE_API_KEY"
ENV_WEBHOOK_SECRET = "DENTBOOK_LOCAL_STRIPE_WEBHOOK_SECRET"  # noqa: S105 - a variable name
ENV_IDENTITY = "DENTBOOK_LOCAL_STRIPE_IDENTITY"
# A fixed, public test value: receivers in tests need no configuration to verify.
DEFAULT_WEBHOOK_SECRET = "whsec_local"  # noqa: S105


_LIVE_PREFIXES = ("sk_live_", "rk_live_", "pk_live_")


@dataclass(frozen=True, slots=True)
class LocalStripeConfig:
    """Where the service listens and how it behaves.

    Only test-mode secret keys are accepted: a live key here almost certainly means a real
    secret was pasted into the wrong place, and it must never be echoed or stored.
    """

    api_key: str
    host: str = "127.0.0.1"
    port: int = 12111
    webhook_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    async_delay_seconds: float = 5.0
    webhook_retry_delays: tuple[float, ...] = (1, 2, 4, 8, 16, 32)
    public_url: str | None = None
    min_expiry_seconds: int = 1800
    max_expiry_seconds: int = 24 * 3600
    expiry_poll_seconds: float = 1.0
    webhook_timeout_seconds: float = 10.0
    api_version: str = "2025-09-30.clover"
    # A nonce answered at `GET /_local/identity`, so whoever started us can tell this
    # process from another program listening on the same port.
    identity: str | None = None

    def __post_init__(self) -> None:
        key = self.api_key
        if key.startswith(_LIVE_PREFIXES):
            raise ConfigError(
                "refusing to start: a live Stripe key was given; the local Stripe service "
                "only accepts test keys starting with 'sk_test_'"
            )
        if not key.startswith("sk_test_") or len(key) <= len("sk_test_"):
            raise ConfigError("api_key must be a test secret key starting with 'sk_test_'")
        if not self.webhook_secret.startswith("whsec_"):
            raise ConfigError("webhook_secret must start with 'whsec_'")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port out of range: {self.port}")
        if self.async_delay_seconds < 0 or any(d < 0 for d in self.webhook_retry_delays):
            raise ConfigError("delays must not be negative")
        if self.min_expiry_seconds > self.max_expiry_seconds:
            raise ConfigError("min_expiry_seconds must not exceed max_expiry_seconds")

    @property
    def base_url(self) -> str:
        """The address the hosted checkout page is announced under (no trailing slash)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
