"""Liveness and readiness probes."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Response

from dentbook.db import Database
from dentbook.live.hub import Live


@get("/healthz", name="healthz")
async def healthz() -> Response[dict[str, str]]:
    return Response({"status": "ok"})


@get("/readyz", name="readyz")
async def readyz(db: NamedDependency[Database],
                 live: NamedDependency[Live]) -> Response[dict[str, str]]:
    """Ready when the database answers and the listener that keeps calendars live is up."""
    if not await db.ping():
        return Response({"status": "database unavailable"}, status_code=503)
    if not live.listener.ready:
        return Response({"status": "listener down"}, status_code=503)
    return Response({"status": "ready"})
