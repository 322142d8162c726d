"""What the database announces (NOTIFY payloads, ids and instants only) and how an SSE
message is framed. Payloads come from `sql/triggers.sql: notify_booking` and
`sql/service-signin.sql: staff_session_end`; any role that may connect could NOTIFY on
our channels, so a payload is parsed like any other input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

BOOKINGS = "dentbook_bookings"
SESSIONS = "dentbook_sessions"  # a staff session ended: {"t": tenant, "k": its stream key}


@dataclass(frozen=True)
class Change:
    """A booking took or freed time (or a hold's lapse instant came)."""

    tenant: UUID
    doctor: UUID
    booking: UUID
    start: datetime
    end: datetime
    status: str
    expires: datetime | None

    @classmethod
    def parse(cls, payload: str) -> Change:
        """Raises ValueError for anything but what `notify_booking` sends: any role that may
        connect can NOTIFY on our channel, so a payload is input like any other."""
        try:
            p = json.loads(payload)
            status = p["st"]
            if not isinstance(status, str) or len(status) > 20:
                raise ValueError("bad status")
            change = cls(UUID(p["t"]), UUID(p["d"]), UUID(p["b"]), _instant(p["s"]),
                         _instant(p["e"]), status, _instant(p["x"]) if p.get("x") else None)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"malformed notification: {exc}") from None
        if change.end <= change.start:
            raise ValueError("malformed notification: empty interval")
        return change


def _instant(value: str) -> datetime:
    found = datetime.fromisoformat(value)
    if found.tzinfo is None:
        raise ValueError("instant without offset")
    return found.astimezone(UTC)


def parse_session_end(payload: str) -> tuple[UUID, str] | None:
    """(clinic, stream key) from a `dentbook_sessions` notification, or None if malformed."""
    try:
        p = json.loads(payload)
        tenant, key = UUID(p["t"]), p["k"]
    except (KeyError, TypeError, ValueError):
        return None
    return (tenant, key) if isinstance(key, str) and len(key) == 64 else None


def sse(message_id: str, html: str) -> bytes:
    """One SSE message carrying an HTML fragment (each line a `data:` line)."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() if line.strip())
    return f"id: {message_id}\n{lines}\n".encode()
