"""Liveness and readiness probes."""

from __future__ import annotations

from litestar import get
from litestar.response import Response

from dentbook.web.state import AppState


@get("/healthz", name="healthz")
async def healthz() -> Response[dict[str, str]]:
    return Response({"status": "ok"})


@get("/readyz", name="readyz")
async def readyz(state: AppState) -> Response[dict[str, str]]:
    """Ready when the database answers and the listener that keeps calendars live is up."""
    if not await state.db.ping():
        return Response({"status": "database unavailable"}, status_code=503)
    if not state.live.listener.ready:
        return Response({"status": "listener down"}, status_code=503)
    return Response({"status": "ready"})
