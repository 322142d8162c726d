"""Settings: one frozen struct read from the environment and validated at start-up."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

import msgspec

from dentbook import metrics, rules
from dentbook.mail.smtp import parse_smtp_url


class SettingsError(ValueError):
    """A setting from the environment has a value we cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # Runtime database URL (the unprivileged role). Empty: start the embedded PostgreSQL.
    # It may point at a transaction pooler (PgBouncer, pool_mode=transaction): every request's
    # state is local to its transaction.
    database_url: str = ""
    # The same database, straight to PostgreSQL (the primary), for the one LISTEN connection
    # per process that keeps calendars live and wakes the job runner: a session of its own,
    # which a transaction pooler cannot keep. Empty: database_url.
    database_direct_url: str = ""
    # Server-side prepared statements on request connections: "on", "off", or "auto" (off
    # when database_direct_url differs from database_url, i.e. requests go through a pooler).
    # PgBouncer before 1.21 (Debian 12 ships 1.18) cannot keep them in transaction mode; 1.21+
    # can with max_prepared_statements set, and then "on" is safe.
    prepared_statements: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    # Address patients' browsers reach us at; Stripe's success/cancel URLs are built from it.
    public_url: str = ""
    data_dir: str = ""
    secret_key: str = ""
    # "auto": Secure cookies when public_url is https.
    secure_cookies: str = "auto"
    log_level: str = "INFO"
    # Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed; empty: none (the peer is the client).
    trusted_proxies: str = ""
    pool_min: int = 2
    pool_max: int = 10
    # How long a request waits for a database connection before answering 503.
    pool_timeout_seconds: float = 15.0
    # Live streams (SSE) one server process keeps open, in all and per client address;
    # beyond them new streams are refused (503 / 429) and pages work without live updates.
    max_streams: int = 10_000
    max_streams_per_client: int = 50
    # On SIGTERM: stop accepting, tell live streams to reconnect (elsewhere), and give requests
    # in flight this long to finish before they are cancelled.
    shutdown_seconds: int = 10
    # Who may read /metrics: off, local (loopback clients), or token:<secret> (a bearer token
    # of at least 16 characters). See dentbook.metrics.
    metrics: str = "off"

    hold_minutes: int = 30
    min_notice_minutes: int = 120
    max_weeks_ahead: int = 26
    max_holds_per_ip: int = 5
    max_holds_per_email: int = 2
    # A delayed payment (bank transfer) keeps its slot this long while the money is on its way.
    processing_hold_hours: int = 72
    # Staff sessions end after this long unused, and this long after sign-in in any case.
    staff_idle_minutes: int = 30
    staff_session_hours: int = 12
    # Failed staff sign-ins allowed inside the window per account (e-mail at a clinic) from
    # one client address, per account from anywhere, and per client address on any account;
    # then 429 until the oldest counted failure leaves the window.
    staff_login_window_minutes: int = 15
    staff_login_max_failures: int = 5
    staff_login_max_failures_per_account: int = 50
    staff_login_max_failures_per_ip: int = 20

    # Where e-mail goes: smtp://user:pass@host:587 (STARTTLS) or smtps://…:465. Empty: `serve`
    # starts the local mail sink and sets this to it, with mail_sink_dir where it keeps
    # what it caught (shown at /dev/mail; never when a real SMTP_URL is configured).
    smtp_url: str = ""
    mail_sink_dir: str = ""
    # The sender of every message (the clinic's name is shown with it) and the domain of
    # the Message-IDs; replies go to the clinic's own address.
    mail_from: str = "no-reply@dentbook.localhost"
    # Jobs (e-mails, refunds) that fail are tried again after this many seconds, doubling
    # each time (at most 6 hours apart), and given up after job_attempts tries.
    job_retry_seconds: float = 30.0
    job_attempts: int = 10

    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    # Base address of the Stripe API; set to the local Stripe when no key is configured.
    stripe_api_base: str = ""
    stripe_max_network_retries: int = 2
    local_stripe_port: int = 12111

    def __post_init__(self) -> None:
        if not 30 <= self.hold_minutes <= 24 * 60:
            raise SettingsError(
                "DENTBOOK_HOLD_MINUTES must be between 30 and 1440 "
                "(Stripe Checkout sessions live at least 30 minutes)"
            )
        for name in ("min_notice_minutes", "max_holds_per_ip", "max_holds_per_email",
                     "max_streams", "max_streams_per_client"):
            if getattr(self, name) < 0:
                raise SettingsError(f"DENTBOOK_{name.upper()} must not be negative")
        if self.job_retry_seconds <= 0:
            raise SettingsError("DENTBOOK_JOB_RETRY_SECONDS must be positive")
        for name in ("job_attempts", "staff_idle_minutes", "staff_session_hours",
                     "staff_login_window_minutes",
                     "staff_login_max_failures", "staff_login_max_failures_per_account",
                     "staff_login_max_failures_per_ip"):
            if getattr(self, name) < 1:
                raise SettingsError(f"DENTBOOK_{name.upper()} must be at least 1")
        if not 1 <= self.max_weeks_ahead <= 104:
            raise SettingsError("DENTBOOK_MAX_WEEKS_AHEAD must be between 1 and 104")
        if self.prepared_statements not in ("auto", "on", "off"):
            raise SettingsError("DENTBOOK_PREPARED_STATEMENTS must be auto, on or off")
        if not 0 <= self.shutdown_seconds <= 3600:
            raise SettingsError("DENTBOOK_SHUTDOWN_SECONDS must be between 0 and 3600")
        problem = metrics.setting_problem(self.metrics)
        if problem is not None:
            raise SettingsError(problem)
        if self.secure_cookies not in ("auto", "true", "false"):
            raise SettingsError("DENTBOOK_SECURE_COOKIES must be auto, true or false")
        if not 1 <= self.pool_min <= self.pool_max:
            raise SettingsError("DENTBOOK_POOL_MIN must be ≥ 1 and ≤ DENTBOOK_POOL_MAX")
        if self.smtp_url:
            try:
                parse_smtp_url(self.smtp_url)
            except ValueError as exc:
                raise SettingsError(f"SMTP_URL: {exc}") from None
        if not rules.valid_email(self.mail_from):
            raise SettingsError("DENTBOOK_MAIL_FROM must be an e-mail address")
        try:
            for part in self.trusted_proxies.split(","):
                if part.strip():
                    ipaddress.ip_network(part.strip(), strict=False)
        except ValueError as exc:
            raise SettingsError(f"DENTBOOK_TRUSTED_PROXIES: {exc}") from None
        key = self.stripe_secret_key
        if key and not key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
            raise SettingsError("STRIPE_SECRET_KEY does not look like a Stripe secret key")
        if key and not self.stripe_webhook_secret.startswith("whsec_"):
            raise SettingsError("STRIPE_WEBHOOK_SECRET (whsec_…) is required with STRIPE_SECRET_KEY")

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def listen_url(self) -> str:
        """Where the LISTEN connection goes: straight to PostgreSQL."""
        return self.database_direct_url or self.database_url

    @property
    def prepare(self) -> bool:
        """Whether request connections may use server-side prepared statements."""
        if self.prepared_statements == "auto":
            return self.listen_url == self.database_url
        return self.prepared_statements == "on"

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies == "auto":
            return self.base_url.startswith("https://")
        return self.secure_cookies == "true"


# Environment variable -> field. Stripe's own names are kept as Stripe documents them.
_ENV = {
    "DATABASE_URL": "database_url",
    "DATABASE_DIRECT_URL": "database_direct_url",
    "SMTP_URL": "smtp_url",
    "STRIPE_SECRET_KEY": "stripe_secret_key",
    "STRIPE_WEBHOOK_SECRET": "stripe_webhook_secret",
    "STRIPE_API_BASE": "stripe_api_base",
}


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from `env` (default: os.environ); `overrides` win. Raises SettingsError."""
    env = os.environ if env is None else env
    raw: dict[str, object] = {}
    for field in Settings.__struct_fields__:
        name = next((k for k, v in _ENV.items() if v == field), f"DENTBOOK_{field.upper()}")
        if name in env:
            raw[field] = env[name]
    raw.update(overrides)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_env_message(str(exc))) from exc


def _env_message(message: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.port`"; name the variable instead.
    if "$." in message:
        field = message.rsplit("$.", 1)[1].rstrip("`")
        name = next((k for k, v in _ENV.items() if v == field), f"DENTBOOK_{field.upper()}")
        return f"{name}: {message.split(' - at ')[0]}"
    return message
