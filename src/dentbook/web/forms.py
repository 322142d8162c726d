"""A posted form as the handlers read it: its text fields by name."""

from __future__ import annotations

from typing import Any

from litestar import Request


async def form_values(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The posted form's text fields; an uploaded file (never asked for) is dropped."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
