"""Mail test kit: sending into the sink and reading back what it caught, a visit to write
about, and an SMTP server on a thread for what the sink never does."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import ssl
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from uuid import UUID

from aiosmtpd.smtp import SMTP

from dentbook.mail.compose import VisitMail
from dentbook.mail.inbox import list_messages, raw_message
from dentbook.mail.sink import MailSink
from dentbook.mail.smtp import SmtpConfig, send
from helpers import run_async

BOOKING = UUID("6f1c1d7e-2b1a-4c55-9d2e-0a1b2c3d4e5f")
SENDER = "no-reply@dentbook.test"


def deliver(config: SmtpConfig, message: EmailMessage, recipients: list[str],
            sender: str = SENDER) -> None:
    run_async(send(config, message, sender, recipients))


def message(subject: str = "Test", to: str = "Jan <jan@example.com>") -> EmailMessage:
    """A plain-text message from SENDER with a Polish body."""
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Treść wiadomości: zażółć gęślą jaźń.")
    return msg


def caught(sink: MailSink) -> list[EmailMessage]:
    """Every message in the sink, newest first, parsed as a mail client would."""
    found = []
    for summary in list_messages(sink.directory):
        raw = raw_message(sink.directory, summary.id)
        assert raw is not None
        found.append(email.message_from_bytes(raw, policy=default))
    return found  # type: ignore[return-value]


def visit(**changes: object) -> VisitMail:
    """A visit at Klinika Alfa on Tuesday 1 December 2026, 10:00 in Warsaw (09:00 UTC)."""
    base = VisitMail(
        booking_id=BOOKING, reference="ALFA-7K3Q", clinic_name="Klinika Alfa",
        clinic_address="ul. Świętokrzyska 12, 00-001 Warszawa", clinic_phone="+48 22 123 45 67",
        clinic_email="kontakt@alfa.test", clinic_url="https://dentbook.test/klinika-alfa",
        time_zone="Europe/Warsaw", doctor_name="dr Anna Żółkiewska",
        starts_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        ends_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        deposit_minor=5000, refund_minor=0, currency="pln", patient_name="Jan Kowalski",
        patient_email="jan.kowalski@example.com", locale="pl",
        visit_url="https://dentbook.test/klinika-alfa/visits/tok_abc123",
        policy_window_hours=24, late_refund_percent=0,
        calendar_uid=f"visit-{BOOKING}@dentbook.test", sequence=0)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Tls:
    cafile: Path
    server: ssl.SSLContext


class TestSmtpServer:
    """An aiosmtpd server with the given handler and options on its own thread and loop, on
    a free port: for what the sink never does (refuse, require TLS, ask for a password)."""

    __test__ = False

    def __init__(self, handler: object, server_ssl: ssl.SSLContext | None = None,
                 **smtp_options: object) -> None:
        self.handler, self.server_ssl, self.options = handler, server_ssl, smtp_options
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> TestSmtpServer:
        self._thread.start()

        async def start() -> asyncio.Server:
            return await asyncio.get_running_loop().create_server(
                lambda: SMTP(self.handler, **self.options),  # type: ignore[arg-type]
                host="127.0.0.1", port=0, ssl=self.server_ssl)

        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
