"""Reading what the local mail sink caught: a newest-first list and single raw messages.

Only names that are sink ids are ever opened, so a request can never reach another file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import MessageError
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import default
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from dentbook.mail.sink import ID

MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class MessageSummary:
    id: str
    to: tuple[str, ...]  # the envelope recipients (who it went to), else the To header
    subject: str
    date: datetime  # the Date header, else when the sink received it


@dataclass(frozen=True)
class MailInbox:
    """The sink's directory, handed to the dev inbox pages (None when mail really goes out)."""

    directory: Path

    def messages(self, limit: int = 200) -> list[MessageSummary]:
        return list_messages(self.directory, limit)

    def raw(self, message_id: str) -> bytes | None:
        return raw_message(self.directory, message_id)


def list_messages(directory: Path | str, limit: int = 200) -> list[MessageSummary]:
    try:
        with os.scandir(directory) as entries:
            ids = [e.name[:-4] for e in entries
                   if e.name.endswith(".eml") and ID.fullmatch(e.name[:-4]) and e.is_file()]
    except FileNotFoundError:
        return []
    found = []
    for message_id in sorted(ids, reverse=True)[:max(limit, 0)]:
        summary = _summary(Path(directory), message_id)
        if summary is not None:
            found.append(summary)
    return found


def raw_message(directory: Path | str, message_id: str) -> bytes | None:
    if not ID.fullmatch(message_id):
        return None
    try:
        return (Path(directory) / f"{message_id}.eml").read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


def _summary(directory: Path, message_id: str) -> MessageSummary | None:
    try:
        with (directory / f"{message_id}.eml").open("rb") as f:
            head = _header_block(f.read(MAX_HEADER_BYTES))
    except FileNotFoundError:  # removed since the listing
        return None
    headers = BytesHeaderParser(policy=default).parsebytes(head)
    to = tuple(_values(headers, "Delivered-To"))
    if not to:
        to = tuple(addr for _, addr in getaddresses(_values(headers, "To")) if addr)
    subject = next(iter(_values(headers, "Subject")), "")
    date = next(iter(_values(headers, "Date")), None)
    return MessageSummary(id=message_id, to=to, subject=subject,
                          date=_date(date) or _received(message_id))


def _header_block(data: bytes) -> bytes:
    """The header section: up to the first empty line, whichever line ending it uses."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    return data[:min(ends)] if ends else data


def _values(headers: Message, name: str) -> list[str]:
    """A header's decoded values (RFC 2047 words decoded), each on one line.

    The sink keeps whatever anyone sends it, so a malformed header reads as empty.
    """
    try:
        return [" ".join(str(v).split()) for v in headers.get_all(name, [])]
    except (ValueError, IndexError, LookupError, MessageError):
        return []


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _received(message_id: str) -> datetime:
    return datetime.strptime(message_id[:15], "%Y%m%dT%H%M%S").replace(
        tzinfo=UTC, microsecond=int(message_id[15:21]))
