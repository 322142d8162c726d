"""`POST /webhooks/stripe`: raw body, verified signature, idempotent effects."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.response import Response

from dentbook import payments
from dentbook.web.state import AppState


@post("/webhooks/stripe", name="stripe_webhook", status_code=200)
async def stripe_webhook(request: Request[Any, Any, Any], state: AppState) -> Response[dict[str, str]]:
    payload = await request.body()
    try:
        event = payments.verify(state.stripe_client, payload, request.headers.get("stripe-signature"),
                                state.settings.stripe_webhook_secret)
    except payments.BadWebhook as exc:
        return Response({"error": str(exc)[:200]}, status_code=400)
    outcome = await payments.handle_event(state.db, state.settings, event)
    if outcome == "confirmed":  # committed: replays answer "replay"
        request.app.state.metrics.confirmations.inc()
    return Response({"outcome": outcome})
