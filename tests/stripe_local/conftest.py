"""Real servers for the local Stripe tests: the service under uvicorn, and a webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from dentbook.stripe_local import LocalStripeConfig, create_app
from helpers import Threaded, free_port

API_KEY = "sk_test_local_suite"
SECRET = "whsec_local_suite"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Delivery:
    body: str
    headers: dict[str, str]
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Captures webhook POSTs; answers 500 to the first `fail_next` of them."""

    url: str = ""
    fail_next: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, type_: str, count: int = 1, timeout: float = 10.0) -> list[Delivery]:
        """Successful deliveries of `type_`, once at least `count` have arrived."""
        def ok() -> list[Delivery]:
            return [d for d in self.deliveries if d.status == 200 and d.event["type"] == type_]
        with self.cond:
            assert self.cond.wait_for(lambda: len(ok()) >= count, timeout), (
                f"no {type_} delivered; got {[d.event['type'] for d in self.deliveries]}")
            return ok()

    def types(self) -> list[str]:
        with self.cond:
            return [d.event["type"] for d in self.deliveries]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            with rec.cond:
                status = 500 if rec.fail_next > 0 else 200
                rec.fail_next -= status == 500
                rec.deliveries.append(Delivery(body, dict(self.headers), status))
                rec.cond.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_port}/webhooks/stripe"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@dataclass
class Running:
    base: str
    config: LocalStripeConfig
    client: stripe.StripeClient


@pytest.fixture
def start_service(receiver: Receiver) -> Iterator[Callable[..., Running]]:
    """Start a fresh service on a free port; keyword arguments override the config."""
    servers: list[Threaded] = []

    def start(**overrides: Any) -> Running:
        port = free_port()
        settings: dict[str, Any] = {
            "api_key": API_KEY, "host": "127.0.0.1", "port": port,
            "webhook_url": receiver.url, "webhook_secret": SECRET,
            "async_delay_seconds": 0.3, "webhook_retry_delays": (0.1, 0.2),
            "expiry_poll_seconds": 0.1,
        }
        config = LocalStripeConfig(**{**settings, **overrides})
        servers.append(Threaded(create_app(config), port, log_level="warning").start())
        client = stripe.StripeClient(API_KEY, base_addresses={"api": servers[-1].url},
                                     max_network_retries=0)
        return Running(servers[-1].url, config, client)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def svc(start_service: Callable[..., Running]) -> Running:
    return start_service()


def session_params(**extra: Any) -> dict[str, Any]:
    return {
        "mode": "payment",
        "line_items": [{
            "price_data": {"currency": "eur", "unit_amount": 5000,
                           "product_data": {"name": "Deposit: check-up"}},
            "quantity": 1,
        }],
        "success_url": "http://app.test/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://app.test/cancelled",
        "metadata": {"booking_id": "bk_1"},
        "client_reference_id": "hold_1",
        "customer_email": "ala@example.com",
        **extra,
    }


def control_pay(svc: Running, sid: str, **form: str) -> httpx.Response:
    return httpx.post(f"{svc.base}/_test/sessions/{sid}/pay", data=form, headers=AUTH)


def verified(delivery: Any) -> stripe.Event:
    return stripe.Webhook.construct_event(
        delivery.body, delivery.headers["Stripe-Signature"], SECRET, tolerance=300)
