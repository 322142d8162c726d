"""Webhook events: built like Stripe's, signed like Stripe signs, delivered with retries.

Delivery runs in background tasks so API calls and page posts never wait on the
receiver; every attempt is recorded so tests can see what was sent and how it went.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass

import httpx

from dentbook.stripe_local.store import JSON, new_id, now

log = logging.getLogger(__name__)


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header value: HMAC-SHA256 of `"{t}.{payload}"` under the secret."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass
class Delivery:
    """One event and how its delivery went so far."""

    event: JSON
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    delivered: bool = False

    def summary(self) -> JSON:
        return {
            "id": self.event["id"],
            "type": self.event["type"],
            "created": self.event["created"],
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered": self.delivered,
            "event": self.event,
        }


class Dispatcher:
    """Creates events and posts them to the one configured endpoint."""

    def __init__(
        self,
        url: str | None,
        secret: str,
        retry_delays: tuple[float, ...],
        api_version: str,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.secret = secret
        self.retry_delays = retry_delays
        self.api_version = api_version
        self.deliveries: dict[str, Delivery] = {}
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def emit(self, type_: str, obj: JSON) -> JSON:
        """Record an event about `obj` (a snapshot, already copied) and start sending it."""
        event: JSON = {
            "id": new_id("evt", test=False),
            "object": "event",
            "api_version": self.api_version,
            "created": now(),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }
        delivery = Delivery(event)
        self.deliveries[event["id"]] = delivery
        self._spawn(delivery)
        return event

    def resend(self, event_id: str) -> Delivery | None:
        """Send a recorded event again: same id and body, fresh timestamp and signature."""
        delivery = self.deliveries.get(event_id)
        if delivery is not None:
            delivery.delivered = False
            self._spawn(delivery)
        return delivery

    def _spawn(self, delivery: Delivery) -> None:
        if self.url is None:
            return
        task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        assert self.url is not None
        body = json.dumps(delivery.event, indent=2)
        for delay in (0.0, *self.retry_delays):
            if delay:
                await asyncio.sleep(delay)
            if await self._attempt(delivery, body):
                return
        log.warning("giving up on webhook %s after %d attempts", delivery.event["id"],
                    delivery.attempts)

    async def _attempt(self, delivery: Delivery, body: str) -> bool:
        assert self.url is not None
        if self._client is None:
            # Emitted outside the lifespan (e.g. a bare ASGI test); one client per attempt.
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                return await self._post(client, delivery, body)
        return await self._post(self._client, delivery, body)

    async def _post(self, client: httpx.AsyncClient, delivery: Delivery, body: str) -> bool:
        assert self.url is not None
        delivery.attempts += 1
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, self.secret),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            response = await client.post(self.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            delivery.last_status, delivery.last_error = None, f"{type(exc).__name__}: {exc}"
            return False
        delivery.last_status = response.status_code
        delivery.last_error = None if response.is_success else response.text[:200]
        delivery.delivered = response.is_success
        return delivery.delivered
