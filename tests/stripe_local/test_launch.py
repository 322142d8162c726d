"""How `dentbook serve` starts the local Stripe: fresh secrets that never reach the command
line, and one clear line when the port belongs to another program or the child dies."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from conftest import Receiver, session_params
from dentbook import serve
from dentbook.settings import SettingsError
from dentbook.stripe_local import launch
from dentbook.stripe_local.launch import Credentials, LocalStripeError
from helpers import free_port


def test_a_port_held_by_another_program_is_refused() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(LocalStripeError) as err:
            serve._start_local_stripe("http://127.0.0.1:8000", port)
    message = str(err.value)
    assert f"port {port} " in message and "DENTBOOK_LOCAL_STRIPE_PORT" in message
    assert "\n" not in message
    # `dentbook` prints SettingsErrors as "dentbook: <message>" and exits 2.
    assert isinstance(err.value, SettingsError)


@pytest.fixture(params=[
    (200, {"object": "local_stripe_identity", "nonce": "someone-else"}),
    (200, {"nonce": None}),
    (404, {"error": "not found"}),
    (200, "<html>a web server</html>"),
])
def impostor(request: pytest.FixtureRequest) -> Iterator[int]:
    """An HTTP server on a port that answers the identity path, but not with our nonce."""
    status, body = request.param
    payload = (body if isinstance(body, str) else json.dumps(body)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_an_answer_without_our_nonce_is_refused(impostor: int) -> None:
    # A child that stays alive, so the only way out is judging what answers on the port.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with pytest.raises(LocalStripeError, match=f"port {impostor} .*another program"):
            launch.wait_until_ours(child, impostor, "our-nonce", timeout=60)
    finally:
        child.kill()
        child.wait(10)


def test_a_child_that_exits_is_reported() -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    child.wait(60)
    with pytest.raises(LocalStripeError, match="exited with status 3") as err:
        launch.wait_until_ours(child, free_port(), "our-nonce", timeout=60)
    assert "DENTBOOK_LOCAL_STRIPE_PORT" in str(err.value)


def test_serve_starts_our_own_service_with_secrets_off_the_command_line(
        receiver: Receiver) -> None:
    port = free_port()
    app_url = receiver.url.removesuffix("/webhooks/stripe")
    proc, env = serve._start_local_stripe(app_url, port)
    try:
        base, key, secret = env["STRIPE_API_BASE"], env["STRIPE_SECRET_KEY"], env[
            "STRIPE_WEBHOOK_SECRET"]
        assert base == f"http://127.0.0.1:{port}"
        assert key.startswith("sk_test_") and len(key) >= 40 and secret.startswith("whsec_")
        command_line = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert "dentbook.stripe_local" in command_line
        assert key not in command_line and secret not in command_line
        identity = httpx.get(f"{base}/_local/identity").json()
        assert identity["object"] == "local_stripe_identity" and identity["nonce"]

        client = stripe.StripeClient(key, base_addresses={"api": base}, max_network_retries=0)
        s = client.v1.checkout.sessions.create(params=session_params())
        paid = httpx.post(f"{base}/_test/sessions/{s.id}/pay",
                          data={"method": "card", "card": "4242424242424242"},
                          headers={"Authorization": f"Bearer {key}"})
        assert paid.status_code == 200
        # The webhook secret the app is given is the one the child signs with.
        delivery = receiver.wait_for("checkout.session.completed")[0]
        event = stripe.Webhook.construct_event(delivery.body,
                                               delivery.headers["Stripe-Signature"], secret)
        assert event.data.object.id == s.id
    finally:
        proc.terminate()
        proc.wait(10)


def test_credentials_are_fresh_each_run() -> None:
    first, second = Credentials.generate(), Credentials.generate()
    assert first.api_key != second.api_key and first.webhook_secret != second.webhook_secret
    assert first.identity != second.identity
    assert first.api_key.startswith("sk_test_") and first.webhook_secret.startswith("whsec_")


def test_the_module_reads_its_key_from_the_environment_only_when_no_flag() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DENTBOOK_LOCAL_STRIPE_")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    missing = subprocess.run([sys.executable, "-m", "dentbook.stripe_local"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 2 and "DENTBOOK_LOCAL_STRIPE_API_KEY" in missing.stderr
    live = subprocess.run([sys.executable, "-m", "dentbook.stripe_local"], capture_output=True,
                          text=True, env={**env, "DENTBOOK_LOCAL_STRIPE_API_KEY": "sk_live_x"},
                          timeout=60)
    assert live.returncode == 2 and "live" in live.stderr
