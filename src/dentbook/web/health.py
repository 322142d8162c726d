"""Liveness and readiness probes."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Response

from dentbook.db import Database


@get("/healthz", name="healthz")
async def healthz() -> Response[dict[str, str]]:
    return Response({"status": "ok"})


@get("/readyz", name="readyz")
async def readyz(db: NamedDependency[Database]) -> Response[dict[str, str]]:
    if await db.ping():
        return Response({"status": "ready"})
    return Response({"status": "database unavailable"}, status_code=503)
