"""The outbox: e-mails sent per second, and the delay from the commit that wrote a message
to its arrival at the mail server.

The product (`dentbook serve --workers 2`, each worker's job runner woken by NOTIFY) sends
into the shipped local mail sink, run here in the bench process with arrival times taken
as each message's DATA ends. Messages are written by the function a confirmed payment
calls (`dentbook.enqueue_message`: the message and its job in the caller's transaction),
about visits of a clinic made for the purpose.

- throughput: N messages committed in one transaction, the time from that commit to the
  last arrival; baseline: the same number of messages of the same size sent one after
  another by a minimal sender (aiosmtplib, a new connection each, as the outbox does) to
  the same sink, i.e. what SMTP to this sink costs without the database or the rendering;
- delay: one message per transaction, the next after the previous arrived; baseline: one
  send by the minimal sender.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import psycopg
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.common import Row, ms, ratio, summary_ms
from bench.data import Context, add_bookings, make_clinic
from dentbook import admin
from dentbook.mail.sink import MailSink, StoreHandler

TIME_LIMIT = 180.0
ENQUEUE = "select dentbook.enqueue_message(%s, 'confirmation')"
TENANT = "select set_config('app.tenant_id', %s, true)"


class TimedHandler(StoreHandler):
    """The sink's own handler, noting when each recipient's message arrived."""

    def __init__(self, sink: MailSink) -> None:
        super().__init__(sink.directory)
        self.arrived: dict[str, float] = {}
        self.sizes: list[int] = []
        self.changed = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        now = time.perf_counter()
        for rcpt in envelope.rcpt_tos:
            self.arrived[rcpt.lower()] = now
        self.sizes.append(len(envelope.original_content or b""))
        self.changed.set()
        return answer

    async def wait_for(self, addresses: list[str], limit: float) -> float:
        """When the last of `addresses` arrived (perf_counter); raises if not within `limit`."""
        deadline = time.perf_counter() + limit
        wanted = [a.lower() for a in addresses]
        while any(a not in self.arrived for a in wanted):
            self.changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                missing = sum(1 for a in wanted if a not in self.arrived)
                raise RuntimeError(f"{missing} of {len(wanted)} messages not at the sink in {limit:.0f} s")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                pass
        return max(self.arrived[a] for a in wanted)


async def _commit(owner_url: str, tenant: uuid.UUID, bookings: list[uuid.UUID]) -> float:
    """Write one message per booking in one transaction (as the owner: the function is
    called by the payment functions, not granted to the runtime role); when it committed."""
    async with await psycopg.AsyncConnection.connect(owner_url) as conn:
        async with conn.transaction():
            await conn.execute(TENANT, (str(tenant),))
            async with conn.cursor() as cur:
                await cur.executemany(ENQUEUE, [(b,) for b in bookings])
        return time.perf_counter()


async def _minimal(port: int, template: bytes, count: int) -> list[float]:
    """The baseline sender: `count` copies of `template`, one connection each, in turn."""
    seconds = []
    for i in range(count):
        message = message_from_bytes(template, _class=EmailMessage)
        del message["To"]
        message["To"] = f"minimal-{i}@example.com"
        t0 = time.perf_counter()
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port,
                              sender="bench@example.com", recipients=[message["To"]])
        seconds.append(time.perf_counter() - t0)
    return seconds


async def run(ctx: Context) -> list[Row]:
    mode = ctx.mode
    n, samples = mode.outbox_messages, mode.outbox_samples
    clinic = make_clinic(ctx.db, "bench-outbox", doctors=4)
    starts = clinic.starts(range(1, 26))
    per_doctor = (n + samples + 10) // len(clinic.doctors) + 1
    for doctor in clinic.doctors:
        add_bookings(ctx.db, clinic, doctor, starts[:per_doctor])
    with admin.as_owner(ctx.db.owner, clinic.id) as conn:
        rows = conn.execute("select id, patient_email from dentbook.bookings"
                            " where tenant_id = %s order by id", (clinic.id,)).fetchall()
    visits = [(b, str(e)) for b, e in rows]
    warm, burst, single = visits[:10], visits[10:10 + n], visits[10 + n:10 + n + samples]

    with tempfile.TemporaryDirectory(prefix="dentbook-bench-mail-") as mail_dir:
        sink = MailSink(mail_dir)
        handler = sink.handler = TimedHandler(sink)
        await sink.start()
        try:
            with ctx.db.server_app(ctx.logs, ctx.secret, SMTP_URL=sink.url):
                # Warm-up: both workers' runners, templates, pools.
                await _commit(ctx.db.owner, clinic.id, [b for b, _ in warm])
                await handler.wait_for([e for _, e in warm], 60)

                committed = await _commit(ctx.db.owner, clinic.id, [b for b, _ in burst])
                last = await handler.wait_for([e for _, e in burst], TIME_LIMIT)
                rate = n / (last - committed)

                delays = []
                for b, e in single:
                    committed = await _commit(ctx.db.owner, clinic.id, [b])
                    delays.append(await handler.wait_for([e], 30) - committed)
                    await asyncio.sleep(0.05)
            kept = sorted(_stored(Path(mail_dir)), key=len)
            template = kept[len(kept) // 2]
            t0 = time.perf_counter()
            minimal = await _minimal(sink.port, template, n)
            minimal_rate = n / (time.perf_counter() - t0)
        finally:
            await sink.stop()

    size = sorted(handler.sizes)[len(handler.sizes) // 2]
    lat, base = summary_ms(delays), summary_ms(minimal)
    r_rate = ratio(rate, minimal_rate)
    r_delay = ratio(lat["p99_ms"], base["p99_ms"])
    raw = {"messages": n, "samples": samples, "rate": rate, "minimal_rate": minimal_rate,
           "delay": lat, "minimal_send": base, "median_bytes": size}
    return [
        Row("outbox", f"{n} messages in one commit → local sink (median {size} B)",
            f"{rate:.0f} messages/s", f"{minimal_rate:.0f}/s (minimal sender, one connection each)",
            r_rate, "ours / minimal messages per second", "", None, raw),
        Row("outbox", f"commit → at the sink, one message at a time ({samples}): p50 / p99 / max (ms)",
            f"{ms(lat['p50_ms'])} / {ms(lat['p99_ms'])} / {ms(lat['max_ms'])}",
            f"{ms(base['p50_ms'])} / {ms(base['p99_ms'])} / {ms(base['max_ms'])} (one minimal send)",
            r_delay, "p99 ours / p99 minimal send", "", None, raw),
    ]


def _stored(directory: Path) -> list[bytes]:
    """The messages the sink kept, without the trace lines it puts on top."""
    out = []
    for path in directory.glob("*.eml"):
        data = path.read_bytes()
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = [ln for ln in head.split(b"\r\n") if not ln.startswith((b"Return-Path:", b"Delivered-To:"))]
        out.append(b"\r\n".join(lines) + b"\r\n\r\n" + rest)
    return out
