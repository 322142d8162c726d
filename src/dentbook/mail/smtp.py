"""Sending one message over SMTP (`aiosmtplib`), configured by `SMTP_URL`.

`smtp://user:pass@host:587` upgrades with STARTTLS when the server offers it (and insists on
it when a password would otherwise cross the network in the clear), `?starttls=require`
always insists, `?starttls=never` never tries; `smtps://host:465` is TLS from the first
byte. Failures come back as `MailError` with `transient` telling the delivery worker
whether trying again later can help.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

Tls = Literal["implicit", "starttls", "opportunistic", "none"]
_STARTTLS = {"auto", "require", "never"}
_DEFAULT_PORT = {"smtp": 25, "smtps": 465}
# One mailbox for an SMTP command line: no whitespace, control characters, separators or
# brackets, exactly one "@". Header parsing never decides who receives a message.
_MAILBOX = re.compile(r"[^\s\x00-\x1f\x7f<>()\[\],;:\"\\@]+@[^\s\x00-\x1f\x7f<>()\[\],;:\"\\@]+")


class MailError(Exception):
    """Sending failed; `transient` means the same message may go through later."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    tls: Tls = "opportunistic"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    cafile: str | None = None  # extra trusted CA bundle, for a relay with a private CA


def parse_smtp_url(url: str) -> SmtpConfig:
    """`smtp[s]://[user[:password]@]host[:port][?starttls=auto|require|never&timeout=S&cafile=P]`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"SMTP_URL is not a valid URL ({exc})") from None
    if parts.scheme not in _DEFAULT_PORT:
        raise ValueError("SMTP_URL must start with smtp:// (STARTTLS) or smtps:// (TLS), "
                         "e.g. smtp://user:password@mail.example.com:587")
    if not parts.hostname:
        raise ValueError("SMTP_URL has no host name, e.g. smtp://mail.example.com:587")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("SMTP_URL takes no path or fragment, only ?starttls=, ?timeout=, ?cafile=")
    query = _query(parts.query)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError("SMTP_URL has a password but no user name")
    starttls = query.get("starttls", "auto")
    if starttls not in _STARTTLS:
        raise ValueError("SMTP_URL: starttls must be auto, require or never")
    if parts.scheme == "smtps" and "starttls" in query:
        raise ValueError("SMTP_URL: smtps:// is TLS from the start; starttls= applies to smtp://")
    remote = not is_loopback(parts.hostname)
    credentials = username is not None
    if parts.scheme == "smtps":
        tls: Tls = "implicit"
    elif starttls == "require" or (starttls == "auto" and credentials and remote):
        tls = "starttls"
    elif starttls == "never":
        if credentials and remote:
            raise ValueError("SMTP_URL: starttls=never with a user name would send the password "
                             "unencrypted to a remote server")
        tls = "none"
    else:
        tls = "opportunistic"
    return SmtpConfig(host=parts.hostname, port=port or _DEFAULT_PORT[parts.scheme], tls=tls,
                      username=username, password=password if credentials else None,
                      timeout=_timeout(query.get("timeout")), cafile=query.get("cafile"))


async def send(config: SmtpConfig, message: EmailMessage, sender: str, recipients: list[str]) -> None:
    """Deliver `message` to exactly `recipients` (the envelope; headers are not consulted)."""
    if not recipients:
        raise MailError("no recipients", transient=False)
    for address in (sender, *recipients):
        if not _MAILBOX.fullmatch(address):
            raise MailError(f"not a single mailbox: {address!r}", transient=False)
    client = aiosmtplib.SMTP(
        hostname=config.host, port=config.port, timeout=config.timeout,
        use_tls=config.tls == "implicit",
        start_tls={"starttls": True, "none": False, "implicit": False}.get(config.tls),
        cert_bundle=config.cafile)
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailError(f"cannot reach {config.host}:{config.port}: {exc}", transient=True) from exc
    try:
        if config.username is not None:
            try:
                await client.login(config.username, config.password or "")
            except (aiosmtplib.SMTPException, OSError) as exc:
                # Wrong credentials are the operator's to fix; the message itself is fine.
                raise MailError(f"SMTP login failed: {exc}", transient=True) from exc
        try:
            await client.send_message(message, sender=sender, recipients=recipients)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise MailError(f"recipients refused: {exc}",
                            transient=all(400 <= c < 500 for c in codes)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise MailError(f"SMTP {exc.code}: {exc.message}", transient=exc.code < 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"sending failed: {exc}", transient=True) from exc
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


def _query(text: str) -> dict[str, str]:
    parsed = parse_qs(text, keep_blank_values=True, strict_parsing=False)
    unknown = set(parsed) - {"starttls", "timeout", "cafile"}
    if unknown:
        raise ValueError(f"SMTP_URL: unknown option(s) {', '.join(sorted(unknown))} "
                         "(known: starttls, timeout, cafile)")
    if any(len(values) > 1 for values in parsed.values()):
        raise ValueError("SMTP_URL: each option may be given once")
    return {k: v[0] for k, v in parsed.items()}


def _timeout(text: str | None) -> float:
    if text is None:
        return 30.0
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 600:
        raise ValueError("SMTP_URL: timeout must be a number of seconds between 0 and 600")
    return value


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine (a name or an address of the loopback network)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
