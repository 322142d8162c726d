"""`GET /metrics`: this process's metrics in Prometheus's text format (dentbook.metrics),
for the clients DENTBOOK_METRICS allows; anyone else gets the same 404 as any unknown path.

The outbox figures are read from the database at scrape time (a worker-level count of the
e-mail jobs due and the oldest one's wait), so every process reports the same backlog:
aggregate them with max(), not sum(). If the database does not answer within a moment the
scrape still succeeds with the last figures, whose age keeps growing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException

from dentbook import metrics, outbox
from dentbook.db import DatabaseUnavailable
from dentbook.web.clients import client_address
from dentbook.web.state import AppState

log = logging.getLogger(__name__)
BACKLOG_SECONDS = 2.0


@get(metrics.PATH, name="metrics", include_in_schema=False)
async def scrape(request: Request[Any, Any, Any], state: AppState) -> Response[bytes]:
    if not metrics.allowed(client_address(request) or "", request.headers.get("authorization"),
                           state.settings.metrics):
        raise NotFoundException()
    found: metrics.Metrics = request.app.state.metrics
    try:
        depth, oldest = await asyncio.wait_for(outbox.backlog(state.db), BACKLOG_SECONDS)
        found.set_outbox(depth, oldest)
    except (TimeoutError, DatabaseUnavailable) as exc:
        log.warning("metrics: outbox not read (%s)", exc or "timed out")
    body, content_type = metrics.render(found)
    # As a header: Litestar would append a second charset to a text/ media type.
    return Response(body, headers={"content-type": content_type, "cache-control": "no-store"})
