"""The local mail sink and its inbox: real SMTP in, .eml files out, read back newest first;
loopback only; ids that cannot reach other files; runnable as its own process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from email.message import EmailMessage
from email.policy import default

import pytest
from mail_kit import SENDER, deliver

from dentbook.mail.inbox import MailInbox, list_messages, raw_message
from dentbook.mail.sink import ID, MailSink, StoreHandler
from dentbook.mail.smtp import parse_smtp_url, send
from helpers import run_async


def message(subject: str, to: str = "Jan Kowalski <jan@example.com>",
            date: str | None = "Tue, 01 Dec 2026 10:00:00 +0100") -> EmailMessage:
    msg = EmailMessage(policy=default)
    msg["From"] = f"Klinika Alfa <{SENDER}>"
    msg["To"] = to
    msg["Subject"] = subject
    if date:
        msg["Date"] = date
    msg.set_content("Dzień dobry!")
    return msg


def test_caught_messages_are_listed_newest_first_with_decoded_headers(sink, sink_config):
    deliver(sink_config, message("Pierwsza: zażółć gęślą jaźń"), ["jan@example.com"])
    deliver(sink_config, message("Second", to="Anna <anna@example.com>", date=None),
            ["anna@example.com", "copy@example.com"])
    newest, oldest = list_messages(sink.directory)
    assert oldest.subject == "Pierwsza: zażółć gęślą jaźń"
    assert oldest.to == ("jan@example.com",)
    assert oldest.date.isoformat() == "2026-12-01T09:00:00+00:00"
    assert newest.subject == "Second"
    assert newest.to == ("anna@example.com", "copy@example.com")
    # No Date header: when the sink received it, which its id records.
    assert newest.date.strftime("%Y%m%dT%H%M%S") == newest.id[:15]
    assert newest.id > oldest.id
    raw = raw_message(sink.directory, oldest.id)
    assert raw is not None and b"=?utf-8?" in raw  # the Polish subject travelled RFC 2047-encoded
    assert list_messages(sink.directory, limit=1) == [newest]
    assert MailInbox(sink.directory).messages() == [newest, oldest]


def test_files_are_whole_eml_files_named_by_sortable_ids(sink, sink_config):
    for i in range(3):
        deliver(sink_config, message(f"m{i}"), ["jan@example.com"])
    names = sorted(os.listdir(sink.directory))
    assert len(names) == 3 and all(n.endswith(".eml") for n in names)  # no temporary files left
    assert all(re.fullmatch(r"\d{8}T\d{12}-[0-9a-f]{6}\.eml", n) for n in names)
    assert [m.subject for m in list_messages(sink.directory)] == ["m2", "m1", "m0"]


def test_ids_rise_strictly_even_within_one_microsecond(tmp_path):
    handler = StoreHandler(tmp_path)
    ids = [handler.store(b"Subject: x\r\n\r\nbody\r\n") for _ in range(300)]
    assert ids == sorted(ids) and len({i[:21] for i in ids}) == 300
    assert all(ID.fullmatch(i) for i in ids)


def test_concurrent_senders_each_get_their_own_file(sink, sink_config):
    async def many() -> None:
        await asyncio.gather(*(send(sink_config, message(f"n{i}"), SENDER, [f"p{i}@example.com"])
                               for i in range(20)))

    run_async(many())
    found = list_messages(sink.directory)
    assert sorted(m.subject for m in found) == sorted(f"n{i}" for i in range(20))
    assert all(m.to == (f"p{m.subject[1:]}@example.com",) for m in found)


@pytest.mark.parametrize("bad", [
    "../../etc/passwd", "..", "", "20261130T120000123456-ab12cd.eml",
    "20261130T120000123456-ab12cd/../x", "20261130T120000123456-AB12CD",
    "20261130T120000123456-ab12cd\x00", ".20261130T120000123456-ab12cd.tmp",
    "20261130T120000123456-ab12c", "/etc/passwd", "20261130T120000123456-ab12cd\n",
])
def test_raw_message_rejects_anything_but_an_id(sink, sink_config, bad):
    deliver(sink_config, message("x"), ["jan@example.com"])
    assert raw_message(sink.directory, bad) is None


def test_unknown_id_and_missing_directory(tmp_path):
    assert raw_message(tmp_path, "20261130T120000123456-ab12cd") is None
    assert list_messages(tmp_path / "nowhere") == []


def test_the_listing_survives_whatever_was_sent_to_the_sink(tmp_path):
    handler = StoreHandler(tmp_path)
    handler.store(b"no headers at all, just text")
    handler.store(b"Subject: =?utf-8?q?broken=ZZ?= =?x-unknown?b?////?=\r\nDate: yesterday\r\n"
                  b"To: <<<,,,@>\r\n\r\nbody")
    handler.store(b"Subject: LF only\nTo: a@example.com\n\nbody\n")
    found = list_messages(tmp_path)
    assert len(found) == 3
    assert found[0].subject == "LF only" and found[0].to == ("a@example.com",)
    assert all(m.date.tzinfo is not None for m in found)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
def test_the_sink_refuses_to_listen_beyond_loopback(tmp_path, host):
    with pytest.raises(ValueError, match="loopback"):
        MailSink(tmp_path, host=host)


def test_a_sink_in_a_running_loop(tmp_path):
    async def scenario() -> list[str]:
        sink = await MailSink(tmp_path).start()
        try:
            await send(parse_smtp_url(sink.url), message("in-loop"), SENDER, ["jan@example.com"])
        finally:
            await sink.stop()
        return [m.subject for m in list_messages(tmp_path)]

    assert run_async(scenario()) == ["in-loop"]


def test_the_sink_as_a_process(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "dentbook.mail.sink", "--dir", str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"smtp://127\.0\.0\.1:(\d+)", line)
        assert m, line
        deliver(parse_smtp_url(m.group(0)), message("from a process"), ["jan@example.com"])
        assert [x.subject for x in list_messages(tmp_path)] == ["from a process"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_the_process_refuses_a_public_address(tmp_path):
    done = subprocess.run([sys.executable, "-m", "dentbook.mail.sink", "--dir", str(tmp_path),
                           "--host", "0.0.0.0"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "loopback" in done.stderr


def test_the_sink_directory_is_private(sink):
    assert sink.directory.stat().st_mode & 0o077 == 0


def test_ipv6_loopback(tmp_path):
    try:
        sink = MailSink(tmp_path, host="::1").start_thread()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert sink.url == f"smtp://[::1]:{sink.port}"
        deliver(parse_smtp_url(sink.url), message("over IPv6"), ["jan@example.com"])
    finally:
        sink.stop_thread()
    assert [m.subject for m in list_messages(tmp_path)] == ["over IPv6"]


def test_a_port_in_use_is_reported_to_the_starting_thread(sink, tmp_path):
    with pytest.raises(OSError):
        MailSink(tmp_path / "other", port=sink.port).start_thread()
