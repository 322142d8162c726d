"""Starting the local Stripe service as a child process and making sure it is ours.

`dentbook serve` talks to whatever answers on the local Stripe port, so before trusting
it we check the port is free, hand the child its secrets and a fresh nonce through the
environment (never the command line, which `ps` shows to every user), and wait until the
port answers `GET /_local/identity` with that nonce. Any other answer means another
program has the port; a child that exits has failed. Either way the caller gets one line
that says what to do.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from dentbook.settings import SettingsError
from dentbook.stripe_local.config import ENV_API_KEY, ENV_IDENTITY, ENV_WEBHOOK_SECRET

PORT_SETTING = "DENTBOOK_LOCAL_STRIPE_PORT"
IDENTITY_PATH = "/_local/identity"


class LocalStripeError(SettingsError):
    """The local Stripe service could not be started; the message says why, in one line.

    A SettingsError because the way out is the operator's (another port, or freeing this
    one), and the `dentbook` command already prints those as `dentbook: <message>`.
    """


@dataclass(frozen=True, slots=True)
class Credentials:
    """Fresh per run: nothing fixed in the source can be used against a running service."""

    api_key: str
    webhook_secret: str
    identity: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls("sk_test_" + secrets.token_hex(24), "whsec_" + secrets.token_hex(16),
                   secrets.token_hex(16))


def start(port: int, webhook_url: str, credentials: Credentials, *,
          timeout: float = 15.0) -> subprocess.Popen[bytes]:
    """The running service on 127.0.0.1:`port`, verified to be the process we started."""
    if not port_is_free(port):
        raise _port_taken(port)
    env = {**os.environ, ENV_API_KEY: credentials.api_key,
           ENV_WEBHOOK_SECRET: credentials.webhook_secret, ENV_IDENTITY: credentials.identity}
    proc = subprocess.Popen(  # noqa: S603 - our own module, our own arguments
        [sys.executable, "-m", "dentbook.stripe_local", "--host", "127.0.0.1",
         "--port", str(port), "--webhook-url", webhook_url, "--log-level", "warning"],
        env=env)
    try:
        wait_until_ours(proc, port, credentials.identity, timeout)
    except BaseException:
        proc.terminate()
        proc.wait(10)
        raise
    return proc


def port_is_free(port: int) -> bool:
    """Whether we could listen on 127.0.0.1:`port` now (as uvicorn binds: SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def wait_until_ours(proc: subprocess.Popen[bytes], port: int, identity: str,
                    timeout: float) -> None:
    """Return once the port answers with our nonce; raise LocalStripeError otherwise."""
    url = f"http://127.0.0.1:{port}{IDENTITY_PATH}"
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            raise LocalStripeError(
                f"the local Stripe service exited with status {code} before it was ready "
                f"(its error is above); if port {port} is in use, set {PORT_SETTING} to a "
                "free port")
        try:
            answer = httpx.get(url, timeout=2)
        except httpx.HTTPError:
            # Not listening yet (refused), or something there that does not speak HTTP and
            # holds the port: our child then fails to bind and exits, caught above.
            if time.monotonic() > deadline:
                raise LocalStripeError(
                    f"the local Stripe service did not answer on port {port} within "
                    f"{timeout:g} s") from None
            time.sleep(0.1)
            continue
        if _nonce(answer) == identity:
            return
        raise _port_taken(port)


def _nonce(answer: httpx.Response) -> object:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body.get("nonce") if answer.status_code == 200 and isinstance(body, dict) else None


def _port_taken(port: int) -> LocalStripeError:
    return LocalStripeError(
        f"port {port} for the local Stripe service is in use by another program; stop it "
        f"or set {PORT_SETTING} to a free port")
