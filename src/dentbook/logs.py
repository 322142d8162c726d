"""Logs on stderr: one JSON object per line for machines (the default when stderr is not a
terminal), or one plain line per record for a person at a terminal. Never colour codes.

Every record logged while a request is served carries its id (`request_id`): the
X-Request-ID a trusted proxy sent (DENTBOOK_TRUSTED_PROXIES), or one made here. The
response names it in X-Request-ID, and each transaction of the request names it in
PostgreSQL's `application_name` (dentbook.db), so one id ties together the proxy's access
log, ours, and the database's.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

# The id of the request being served in this task, if any.
request_id: ContextVar[str | None] = ContextVar("dentbook_request_id", default=None)
HEADER = b"x-request-id"
# What we accept from a proxy: short and plain, as it ends up in log lines and in
# application_name (ASCII, at most 63 bytes with our prefix).
_ACCEPTED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,47}")

# Record attributes that are not the caller's extras; uvicorn's `color_message` (its
# message with terminal colour codes) is dropped too: plain text only.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """`12:00:01 dentbook is at http://127.0.0.1:8000  workers=1` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extra = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        line = f"{at} {level}{record.getMessage()}" + (f"  {extra}" if extra else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to each record (as `request_id`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        if current is not None and not hasattr(record, "request_id"):
            record.request_id = current
        return True


# A path segment that is a secret: a patient's visit link, a doctor's calendar feed, an
# invitation token (url-safe base64, 20 characters or more, some capital or underscore:
# never a clinic's slug, which is lowercase, nor a visit's id).
_TOKEN = re.compile(r"(?<=/)(?=[^/]*[A-Z_])[A-Za-z0-9_-]{20,}(?=/|$|\.)")


def redact_target(target: str) -> str:
    """A request target as the access log may keep it: query values (a patient search is an
    e-mail or a phone number) and token segments replaced by `…`; ids and keys kept."""
    path, _, query = target.partition("?")
    path = _TOKEN.sub("…", path)
    if not query:
        return path
    keys = [pair.partition("=")[0] for pair in query.split("&") if pair]
    return path + "?" + "&".join(f"{key}=…" for key in keys)


class AccessLogRedactor(logging.Filter):
    """On uvicorn's access log: no personal data or secret from a URL reaches the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_target(args[2]), args[3], args[4])
        return True


class RequestIds:
    """ASGI wrapper giving each HTTP request its id (see the module docstring)."""

    def __init__(self, app: ASGIApp, trusted_proxies: str) -> None:
        self.app = app
        self.networks = tuple(ipaddress.ip_network(part.strip(), strict=False)
                              for part in trusted_proxies.split(",") if part.strip())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        current = self._given(scope) or secrets.token_hex(8)
        token = request_id.set(current)

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (HEADER, current.encode())]
            await send(message)

        try:
            await self.app(scope, receive, named)
        finally:
            request_id.reset(token)

    def _given(self, scope: Scope) -> str | None:
        """The proxy's id for this request, if the peer is a trusted proxy and the id is plain."""
        client = scope.get("client")
        if not self.networks or not client:
            return None
        try:
            peer = ipaddress.ip_address(client[0])
        except ValueError:
            return None
        if not any(peer in net for net in self.networks):
            return None
        for name, value in scope["headers"]:
            if name == HEADER:
                text = value.decode("latin-1").strip()
                return text if _ACCEPTED.fullmatch(text) else None
        return None


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(PlainFormatter() if sys.stderr.isatty() else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogRedactor) for f in access.filters):
        access.addFilter(AccessLogRedactor())
    for noisy in ("httpx", "httpcore", "stripe", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
