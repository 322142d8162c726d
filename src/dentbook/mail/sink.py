"""The local mail sink: an SMTP server on the loopback interface that accepts every message
and keeps it as an `.eml` file, so development and demos need no real mail account.

Like the local Stripe, it is a stand-in: it never relays anything anywhere and refuses to
listen on an address other machines could reach. Each message is stored under a sortable
id (`20261130T120000123456-ab12cd`: UTC receive time to the microsecond, then random hex),
written to a temporary file and renamed, so a reader never sees half a message. As a local
delivery agent does, it puts `Return-Path` and one `Delivered-To` per envelope recipient
on top, so the envelope stays visible in the stored message.

In-process: `await MailSink(dir).start()` in a running loop, or `MailSink(dir).start_thread()`.
As a process: `python -m dentbook.mail.sink --dir DIR [--port N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from dentbook.mail.smtp import is_loopback

ID = re.compile(r"\d{8}T\d{12}-[0-9a-f]{6}")
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class StoreHandler:
    """aiosmtpd handler: every message, as received, into `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._last = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        trace = [f"Return-Path: <{envelope.mail_from or ''}>"]
        trace += [f"Delivered-To: {rcpt}" for rcpt in envelope.rcpt_tos]
        data = ("\r\n".join(trace) + "\r\n").encode() + raw
        await asyncio.to_thread(self.store, data)  # off the loop: it may be the app's own
        return "250 OK: kept by the local mail sink, not delivered"

    def store(self, data: bytes) -> str:
        message_id = self._next_id()
        final = self.directory / f"{message_id}.eml"
        temporary = self.directory / f".{message_id}.tmp"
        # No fsync: a development sink that loses its last message in a power cut is fine,
        # and the outbox benchmark measures delivery, not the disk.
        temporary.write_bytes(data)
        os.replace(temporary, final)
        return message_id

    def _next_id(self) -> str:
        with self._lock:
            # Strictly increasing even within one microsecond, so ids sort in arrival order.
            now = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
            self._last = now
        return f"{now:%Y%m%dT%H%M%S}{now.microsecond:06d}-{secrets.token_hex(3)}"


class MailSink:
    """The sink's SMTP listener; `port=0` takes a free port (see `.port` once started)."""

    def __init__(self, directory: Path | str, host: str = "127.0.0.1", port: int = 0) -> None:
        if not is_loopback(host):
            raise ValueError(f"the local mail sink listens on loopback only, not {host!r}")
        self.directory = Path(directory)
        self.host, self.port = host, port
        self.handler = StoreHandler(self.directory)
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """The `SMTP_URL` that sends into this sink."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp://{host}:{self.port}"

    async def start(self) -> MailSink:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # patients' mail
        self._server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(self.handler, hostname="dentbook-mail-sink", ident="dentbook mail sink",
                         data_size_limit=MAX_MESSAGE_BYTES, enable_SMTPUTF8=True),
            host=self.host, port=self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def start_thread(self) -> MailSink:
        """Serve on a loop of its own thread (for code that has no running loop)."""
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the starting thread below
                failure.append(exc)
                started.set()
                loop.close()
                return
            self._loop = loop
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="mail-sink", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return self

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:  # started, not failed
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = self._loop = None


async def _serve(directory: Path, host: str, port: int) -> None:
    sink = await MailSink(directory, host, port).start()
    print(f"dentbook mail sink: listening on {sink.url}, keeping messages in {directory}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sink.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dentbook.mail.sink",
                                description="Local mail sink: keeps every message, sends none.")
    p.add_argument("--dir", required=True, type=Path, help="where to keep the .eml files")
    p.add_argument("--host", default="127.0.0.1", help="a loopback address")
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed on start)")
    args = p.parse_args(argv)
    try:
        asyncio.run(_serve(args.dir, args.host, args.port))
    except (ValueError, OSError) as exc:
        print(f"dentbook mail sink: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
