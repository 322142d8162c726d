"""Run the local Stripe service: `python -m dentbook.stripe_local [--port …]`.

The API key and webhook secret are read from DENTBOOK_LOCAL_STRIPE_API_KEY and
DENTBOOK_LOCAL_STRIPE_WEBHOOK_SECRET; `--api-key` / `--webhook-secret` override them but
put the secret on the command line, where every user of the machine can read it (`ps`).
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from dentbook.stripe_local.app import create_app
from dentbook.stripe_local.config import (
    DEFAULT_WEBHOOK_SECRET,
    ENV_API_KEY,
    ENV_IDENTITY,
    ENV_WEBHOOK_SECRET,
    ConfigError,
    LocalStripeConfig,
)


def _delays(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m dentbook.stripe_local",
        description="Local Stripe-compatible test service (checkout, refunds, webhooks).",
        epilog=f"Prefer {ENV_API_KEY} and {ENV_WEBHOOK_SECRET} to the flags: a command "
               "line is visible to every user of the machine (ps).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=12111)
    p.add_argument("--api-key", default=None,
                   help=f"test secret key clients must send (prefer {ENV_API_KEY})")
    p.add_argument("--webhook-url", default=None, help="where to POST events (none: keep only)")
    p.add_argument("--webhook-secret", default=None,
                   help=f"signing secret, whsec_… (prefer {ENV_WEBHOOK_SECRET}; "
                        f"default {DEFAULT_WEBHOOK_SECRET})")
    p.add_argument("--async-delay", type=float, default=5.0,
                   help="seconds before a delayed (bank transfer) payment settles")
    p.add_argument("--retry-delays", type=_delays, default=(1, 2, 4, 8, 16, 32),
                   help="comma-separated webhook retry back-off in seconds")
    p.add_argument("--public-url", default=None,
                   help="base address for hosted page links (default http://HOST:PORT)")
    p.add_argument("--min-expiry", type=int, default=1800,
                   help="smallest allowed expires_at - now, seconds (Stripe: 1800)")
    p.add_argument("--log-level", default="info")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    api_key = args.api_key or os.environ.get(ENV_API_KEY, "")
    if not api_key:
        print(f"stripe_local: set {ENV_API_KEY} (or pass --api-key) to a test secret key",
              file=sys.stderr)
        return 2
    secret = args.webhook_secret or os.environ.get(ENV_WEBHOOK_SECRET) or DEFAULT_WEBHOOK_SECRET
    try:
        config = LocalStripeConfig(
            api_key=api_key,
            host=args.host,
            port=args.port,
            webhook_url=args.webhook_url,
            async_delay_seconds=args.async_delay,
            webhook_retry_delays=args.retry_delays,
            public_url=args.public_url,
            min_expiry_seconds=args.min_expiry,
            webhook_secret=secret,
            identity=os.environ.get(ENV_IDENTITY) or None,
        )
    except ConfigError as exc:
        print(f"stripe_local: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(create_app(config), host=config.host, port=config.port,
                log_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
