"""SMTP_URL parsing, and sending over real sockets: into the sink, to a closed port, to
servers that refuse, and over STARTTLS and implicit TLS with a password."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from mail_kit import SENDER, TestSmtpServer, caught, deliver, message

from dentbook.mail.inbox import list_messages
from dentbook.mail.sink import StoreHandler
from dentbook.mail.smtp import MailError, SmtpConfig, parse_smtp_url
from helpers import free_port

# --- SMTP_URL -------------------------------------------------------------------------------

def test_url_with_user_and_password_means_starttls_and_decodes_them():
    config = parse_smtp_url("smtp://us%40er:p%40ss%3Aw%2Fd%20x@mail.example.com:587")
    assert (config.host, config.port, config.tls) == ("mail.example.com", 587, "starttls")
    assert (config.username, config.password) == ("us@er", "p@ss:w/d x")
    assert "p@ss" not in repr(config)


def test_url_variants():
    assert parse_smtp_url("smtps://u:p@mail.example.com:465").tls == "implicit"
    assert parse_smtp_url("smtps://mail.example.com").port == 465
    local = parse_smtp_url("smtp://127.0.0.1:2525")
    assert (local.host, local.port, local.tls, local.username, local.password) == (
        "127.0.0.1", 2525, "opportunistic", None, None)
    assert parse_smtp_url("smtp://mail.example.com").port == 25
    assert parse_smtp_url("smtp://mail.example.com:25?starttls=require").tls == "starttls"
    assert parse_smtp_url("smtp://mail.example.com?starttls=never").tls == "none"
    # A password to a relay on this machine never leaves it: STARTTLS only if offered.
    assert parse_smtp_url("smtp://u:p@localhost:2525").tls == "opportunistic"
    assert parse_smtp_url("smtp://[::1]:2525").host == "::1"
    tuned = parse_smtp_url("smtp://h.example?timeout=5.5&cafile=/etc/ca.pem")
    assert (tuned.timeout, tuned.cafile) == (5.5, "/etc/ca.pem")


@pytest.mark.parametrize(("url", "says"), [
    ("http://mail.example.com", "must start with smtp://"),
    ("mail.example.com:587", "must start with smtp://"),
    ("smtp://", "no host name"),
    ("smtp://mail.example.com:99999", "not a valid URL"),
    ("smtp://mail.example.com:port", "not a valid URL"),
    ("smtp://mail.example.com/path", "no path"),
    ("smtp://mail.example.com?tls=yes", "unknown option"),
    ("smtp://mail.example.com?starttls=maybe", "starttls must be"),
    ("smtp://mail.example.com?starttls=auto&starttls=never", "once"),
    ("smtps://mail.example.com?starttls=require", "smtps://"),
    ("smtp://mail.example.com?timeout=soon", "timeout"),
    ("smtp://mail.example.com?timeout=0", "timeout"),
    ("smtp://:secret@mail.example.com", "no user name"),
    ("smtp://u:p@mail.example.com?starttls=never", "unencrypted"),
])
def test_bad_urls_say_what_is_wrong(url, says):
    with pytest.raises(ValueError, match=says):
        parse_smtp_url(url)


# --- sending into the sink ------------------------------------------------------------------

def test_envelope_is_exactly_the_given_recipients(sink, sink_config):
    msg = message(to="Someone Else <else@example.com>, third@example.com")
    msg["Bcc"] = "hidden@example.com"
    deliver(sink_config, msg, ["jan@example.com"])
    [got] = caught(sink)
    assert got.get_all("Delivered-To") == ["jan@example.com"]
    assert got["Return-Path"] == f"<{SENDER}>"
    assert got["Bcc"] is None  # never transmitted
    assert got.get_content().strip() == "Treść wiadomości: zażółć gęślą jaźń."
    [summary] = list_messages(sink.directory)
    assert summary.to == ("jan@example.com",)


@pytest.mark.parametrize("recipient", [
    "jan@example.com, evil@example.com", "jan@example.com\r\nRCPT TO:<evil@example.com>",
    "Jan <jan@example.com>", "jan@example.com evil@example.com", "jan", "jan@@example.com",
    "jan@example.com>", '"jan"@example.com', "",
])
def test_anything_but_one_mailbox_is_refused_before_connecting(sink, sink_config, recipient):
    with pytest.raises(MailError) as err:
        deliver(sink_config, message(), [recipient])
    assert err.value.transient is False
    assert list_messages(sink.directory) == []


def test_no_recipients_is_a_permanent_error(sink_config):
    with pytest.raises(MailError) as err:
        deliver(sink_config, message(), [])
    assert err.value.transient is False


def test_smtp_down_is_transient():
    closed = SmtpConfig(host="127.0.0.1", port=free_port(), timeout=5)
    with pytest.raises(MailError, match="cannot reach") as err:
        deliver(closed, message(), ["jan@example.com"])
    assert err.value.transient is True


def test_starttls_required_but_not_offered_is_transient(sink, sink_config):
    config = parse_smtp_url(f"{sink.url}?starttls=require")
    with pytest.raises(MailError) as err:
        deliver(config, message(), ["jan@example.com"])
    assert err.value.transient is True
    assert list_messages(sink.directory) == []


# --- servers that refuse --------------------------------------------------------------------

class Refusing(StoreHandler):
    """Refuses RCPT for local parts naming a reply code ("r550@…"), DATA for "data554@…"."""

    async def handle_RCPT(self, server, session, envelope, address, options):
        local = address.split("@")[0]
        if local.startswith("r"):
            return f"{local[1:]} 5.1.1 no such mailbox" if local[1] == "5" else \
                f"{local[1:]} 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.startswith("data554") for r in envelope.rcpt_tos):
            return "554 5.6.0 message refused"
        if any(r.startswith("data451") for r in envelope.rcpt_tos):
            return "451 4.3.0 try again"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize(("recipients", "transient"), [
    (["r550@example.com"], False),
    (["r450@example.com"], True),
    (["r450@example.com", "r550@example.com"], False),
    (["data554@example.com"], False),
    (["data451@example.com"], True),
])
def test_refusals_are_permanent_for_5xx_and_transient_for_4xx(tmp_path, recipients, transient):
    with TestSmtpServer(Refusing(tmp_path)) as server:
        config = parse_smtp_url(f"smtp://127.0.0.1:{server.port}")
        with pytest.raises(MailError) as err:
            deliver(config, message(), recipients)
    assert err.value.transient is transient
    assert list_messages(tmp_path) == []


def test_one_refused_recipient_of_two_still_delivers_to_the_other(tmp_path):
    with TestSmtpServer(Refusing(tmp_path)) as server:
        deliver(parse_smtp_url(f"smtp://127.0.0.1:{server.port}"), message(),
                ["r550@example.com", "ok@example.com"])
    assert list_messages(tmp_path)[0].to == ("ok@example.com",)


# --- TLS and passwords ----------------------------------------------------------------------

PASSWORD = "p@ss:wörd/ 1"


def authenticator(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data == LoginPassword(b"clinic@alfa", PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=True: we would answer ourselves


def credentials(password: str = PASSWORD) -> str:
    return f"{quote('clinic@alfa', safe='')}:{quote(password, safe='')}"


def test_starttls_with_password(tmp_path, tls):
    with TestSmtpServer(StoreHandler(tmp_path), tls_context=tls.server, require_starttls=True,
                        authenticator=authenticator, auth_required=True) as server:
        config = parse_smtp_url(f"smtp://{credentials()}@localhost:{server.port}"
                                f"?starttls=require&cafile={tls.cafile}")
        deliver(config, message("over STARTTLS"), ["jan@example.com"])
        with pytest.raises(MailError, match="login failed") as err:
            deliver(parse_smtp_url(f"smtp://{credentials('wrong')}@localhost:{server.port}"
                                   f"?starttls=require&cafile={tls.cafile}"),
                    message(), ["jan@example.com"])
    assert err.value.transient is True  # the operator fixes the password; the mail waits
    assert [m.subject for m in list_messages(tmp_path)] == ["over STARTTLS"]


def test_starttls_refuses_an_untrusted_certificate(tmp_path, tls):
    with TestSmtpServer(StoreHandler(tmp_path), tls_context=tls.server) as server:
        with pytest.raises(MailError) as err:
            deliver(parse_smtp_url(f"smtp://localhost:{server.port}?starttls=require"),
                    message(), ["jan@example.com"])
    assert err.value.transient is True
    assert list_messages(tmp_path) == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_with_password(tmp_path, tls):
    # aiosmtpd cannot tell its socket is TLS here (it only knows STARTTLS): let it ask.
    with TestSmtpServer(StoreHandler(tmp_path), server_ssl=tls.server, auth_require_tls=False,
                        authenticator=authenticator, auth_required=True) as server:
        config = parse_smtp_url(f"smtps://{credentials()}@localhost:{server.port}"
                                f"?cafile={tls.cafile}")
        deliver(config, message("over TLS"), ["jan@example.com"])
    assert [m.subject for m in list_messages(tmp_path)] == ["over TLS"]
