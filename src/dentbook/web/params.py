"""Parsing query and form values by hand, so bad input gets our own localized 4xx."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from dentbook.errors import Invalid, NotFound


def optional_uuid(value: str | None, field: str) -> UUID | None:
    """An id from the URL; malformed ids are simply unknown (404), like absent ones."""
    if value in (None, ""):
        return None
    try:
        if len(value) <= 36:  # type: ignore[arg-type]
            return UUID(value)
    except ValueError:
        pass
    raise NotFound(field)


def optional_week(value: str | None) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value) if len(value) == 10 else _bad("week")  # type: ignore[arg-type]
    except ValueError:
        return _bad("week")


def instant(value: str, field: str = "start") -> datetime:
    """An ISO 8601 instant with an explicit offset (a local time alone is ambiguous)."""
    try:
        parsed = datetime.fromisoformat(value) if 16 <= len(value) <= 40 else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Invalid({field: "invalid_start"})
    return parsed


def _bad(field: str) -> date:
    raise Invalid({field: f"invalid_{field}"})
