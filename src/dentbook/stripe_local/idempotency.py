"""`Idempotency-Key` handling as Stripe does it: run once, replay afterwards, refuse twins.

While a request with key K is running, another request with K is not queued behind it: it
gets 409 at once, as from the real API. The official `stripe` library (16.x,
`HTTPClient._should_retry` in `stripe/_http_client.py`) retries a 409 when the response
carries no `Stripe-Should-Retry: false`, up to `max_network_retries` times with back-off
(0.5 s doubling, jittered, at most 5 s); the retry then gets the stored answer. With no
retries left the caller sees `stripe.APIError` with `http_status` 409 (the library maps
`idempotency_error` to `IdempotencyError` only for 400 and 404).

Operations here are synchronous, so on their own they never overlap; `hold()` keeps every
keyed request in progress until `release()`, which lets tests make a twin arrive while
the first is still running without depending on timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from dentbook.stripe_local.errors import StripeError


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What an idempotent POST answered, kept to be replayed byte for byte."""

    path: str
    fingerprint: tuple[tuple[str, str], ...]
    status: int
    body: bytes


class Idempotency:
    """Stored answers and the keys in progress, for one running service."""

    def __init__(self) -> None:
        self.stored: dict[str, StoredResponse] = {}
        self.in_progress: set[str] = set()
        self.conflicts = 0
        self._released = asyncio.Event()
        self._released.set()

    @property
    def held(self) -> bool:
        return not self._released.is_set()

    def hold(self) -> None:
        """From now on keyed requests stay in progress until `release()` (tests only)."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def run(self, key: str, path: str, fingerprint: tuple[tuple[str, str], ...],
                  op: Callable[[], bytes]) -> tuple[StoredResponse, bool]:
        """The answer for `key` and whether it is a replay; raises StripeError when refused.

        Only successes are stored: like Stripe, a request refused by validation may be
        retried with the same key.
        """
        stored = self.stored.get(key)
        if stored is not None:
            _check_same(stored, key, path, fingerprint)
            return stored, True
        if key in self.in_progress:
            self.conflicts += 1
            raise StripeError(
                409,
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): {key}. Please try again later.",
                type_="idempotency_error", code="idempotency_key_in_use", should_retry=None)
        self.in_progress.add(key)
        try:
            await self._released.wait()
            body = op()
        finally:
            self.in_progress.discard(key)
        stored = self.stored[key] = StoredResponse(path, fingerprint, 200, body)
        return stored, False


def _check_same(stored: StoredResponse, key: str, path: str,
                fingerprint: tuple[tuple[str, str], ...]) -> None:
    if stored.path != path:
        raise StripeError(400, (
            "Keys for idempotent requests can only be used for the same endpoint they were "
            f"first used for ('{stored.path}' vs '{path}'). Try using a key other than "
            f"'{key}' if you meant to execute a different request."), type_="idempotency_error")
    if stored.fingerprint != fingerprint:
        raise StripeError(400, (
            "Keys for idempotent requests can only be used with the same parameters they "
            f"were first used with. Try using a key other than '{key}' if you meant to "
            "execute a different request."), type_="idempotency_error")
