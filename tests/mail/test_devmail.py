"""The dev inbox pages of the real app, over HTTP: what the local sink caught, newest first,
as HTML, JSON and raw .eml; 404 whenever a real mail server is configured."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email.policy import default

import httpx
import pytest
from mail_kit import deliver, message

from dentbook.mail.inbox import list_messages, raw_message
from helpers import Server, app_settings


@pytest.fixture
def client(pg, sink) -> Iterator[httpx.Client]:
    """The real app, with the sink's directory as its dev inbox (as `serve` sets it)."""
    app = Server(app_settings(pg, smtp_url=sink.url, mail_sink_dir=str(sink.directory))).start()
    with httpx.Client(base_url=app.url, timeout=30) as c:
        yield c
    app.stop()


@pytest.fixture
def two(sink, sink_config) -> list[str]:
    deliver(sink_config, message("Wizyta potwierdzona — zażółć", "Jan <jan@example.com>"),
            ["jan@example.com"])
    deliver(sink_config, message("<b>Second</b>", "anna@example.com"), ["anna@example.com"])
    return [m.id for m in list_messages(sink.directory)]


def test_json_lists_newest_first(client, two):
    r = client.get("/dev/mail.json")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert [m["id"] for m in body] == two
    assert body[0]["to"] == ["anna@example.com"] and body[0]["subject"] == "<b>Second</b>"
    assert body[1]["to"] == ["jan@example.com"]
    assert body[1]["subject"] == "Wizyta potwierdzona — zażółć"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*", body[1]["date"])
    assert set(body[0]) == {"id", "to", "subject", "date"}


def test_page_links_each_message(client, two):
    r = client.get("/dev/mail", params={"lang": "en"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert re.findall(r'data-mail="([^"]+)"', r.text) == two
    for message_id in two:
        assert f'href="/dev/mail/{message_id}.eml"' in r.text
    assert "&lt;b&gt;Second&lt;/b&gt;" in r.text and "<b>Second</b>" not in r.text
    assert "Caught e-mail" in r.text
    polish = client.get("/dev/mail", params={"lang": "pl"})
    assert "Przechwycone e-maile" in polish.text and "Wizyta potwierdzona — zażółć" in polish.text


def test_raw_message_is_rfc822(client, sink, two):
    r = client.get(f"/dev/mail/{two[1]}.eml")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("message/rfc822")
    assert r.content == raw_message(sink.directory, two[1])
    parsed = email.message_from_bytes(r.content, policy=default)
    assert parsed["Subject"] == "Wizyta potwierdzona — zażółć"


@pytest.mark.parametrize("path", [
    "/dev/mail/20261130T120000123456-ab12cd.eml", "/dev/mail/nothing.eml",
    "/dev/mail/..%2F..%2Fetc%2Fpasswd.eml", "/dev/mail/%2e%2e.eml", "/dev/mail/x",
    "/dev/mail/.eml", "/dev/mail/20261130T120000123456-ab12cd.txt",
])
def test_unknown_or_malformed_ids_are_404(client, two, path):
    r = client.get(path)
    assert r.status_code == 404
    assert 'data-error="not_found"' in r.text


def test_the_id_without_its_extension_is_404(client, two):
    assert client.get(f"/dev/mail/{two[0]}").status_code == 404


def test_empty_inbox(client):
    assert client.get("/dev/mail.json").json() == []
    assert "No messages yet." in client.get("/dev/mail", params={"lang": "en"}).text


def test_everything_is_404_when_mail_really_goes_out(pg, sink, sink_config):
    deliver(sink_config, message("secret", "jan@example.com"), ["jan@example.com"])
    [caught] = list_messages(sink.directory)
    app = Server(app_settings(pg, smtp_url=sink.url)).start()  # a real relay: no dev inbox
    try:
        for path in ("/dev/mail", "/dev/mail.json", f"/dev/mail/{caught.id}.eml"):
            r = httpx.get(app.url + path, timeout=30)
            assert r.status_code == 404, path
            assert "secret" not in r.text
    finally:
        app.stop()
