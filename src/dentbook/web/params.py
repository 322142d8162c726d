"""Parsing query and form values by hand, so bad input gets our own localized 4xx."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from dentbook.errors import Invalid, NotFound


def optional_uuid(value: str | None, field: str) -> UUID | None:
    """An id from the URL; malformed ids are simply unknown (404), like absent ones."""
    if value in (None, ""):
        return None
    try:
        if value is not None and len(value) <= 36:
            return UUID(value)
    except ValueError:
        pass
    raise NotFound(field)


def optional_week(value: str | None) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value) if value and len(value) == 10 else _bad("week")
    except ValueError:
        return _bad("week")


def _bad(field: str) -> date:
    raise Invalid({field: f"invalid_{field}"})
