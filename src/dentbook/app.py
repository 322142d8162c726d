"""Assembly: `create_app(settings) -> Litestar`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import stripe
from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import Message, Scope

from dentbook import jobs, logs, payments, tenancy
from dentbook.agenda import Filters
from dentbook.db import Conn, Database
from dentbook.live.hub import Live
from dentbook.logs import RequestIds
from dentbook.mail.inbox import MailInbox
from dentbook.metrics import Metrics, instrument
from dentbook.payments import make_client
from dentbook.resources import STATIC_DIR
from dentbook.settings import Settings, load_settings
from dentbook.staff import StaffUser
from dentbook.tenancy import Clinic, ClinicDb, Clinics
from dentbook.web import bookings, deps, devmail, errors, health, public, streams, webhooks
from dentbook.web import metrics as metrics_page
from dentbook.web import staff as staff_pages
from dentbook.web.render import attach, make_environment
from dentbook.web.streams import Streams

log = logging.getLogger("dentbook")
CSRF_COOKIE = "csrftoken"
# Every page loads only our own static files: no inline script, style or frame.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; "
       "form-action 'self' {checkout}")


def create_app(settings: Settings, db: Database | None = None) -> Litestar:
    database = db or Database(settings.database_url, min_size=settings.pool_min,
                              max_size=settings.pool_max, timeout=settings.pool_timeout_seconds,
                              prepare=settings.prepare)
    env = make_environment()
    clinics = Clinics(database)
    # The dev inbox shows what the local mail sink caught; never with a real mail server.
    inbox = MailInbox(Path(settings.mail_sink_dir)) if settings.mail_sink_dir else None
    stripe_client = make_client(settings)
    measured = Metrics()

    async def refund(job: jobs.Job) -> None:
        if await payments.refund_job(database, stripe_client, job):
            measured.refunds.inc()

    runner = jobs.Runner(database, {"refund": refund})
    # LISTEN goes straight to PostgreSQL (a transaction pooler cannot keep a session's LISTEN).
    live = Live(database, clinics, settings, env, settings.listen_url,
                {jobs.CHANNEL: runner.wake, tenancy.CHANNEL: clinics.forget})
    measured.pool_stats = database.pool.get_stats
    measured.listener_ready = lambda: live.listener.ready
    live.listener.on_notification = measured.notification_handled

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await database.open()
        await live.start()
        await runner.start()
        log.info(f"dentbook is ready at {settings.base_url}", extra={"url": settings.base_url})
        try:
            yield
        finally:
            await runner.stop()
            await live.stop()
            await database.close()

    # The booking form's answer redirects to Checkout; form-action must allow it.
    csp = CSP.format(checkout=settings.stripe_api_base or "https://checkout.stripe.com")
    headers = [(b"content-security-policy", csp.encode()),
               (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"same-origin"),
               (b"x-frame-options", b"DENY")]

    async def security_headers(message: Message, scope: Scope) -> None:
        # At the ASGI level, so static files and error pages get them too.
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *headers]

    clinic_routes = Router(
        path="/{slug:str}",
        route_handlers=[
            public.clinic_page, public.slots_fragment,
            bookings.book, bookings.booking_return, bookings.booking_cancelled,
            bookings.booking_release, bookings.booking_resume,
            streams.calendar_events, streams.booking_events, streams.staff_events,
            staff_pages.ROUTER,
        ],
        dependencies=deps.CLINIC,
    )
    app = Litestar(
        route_handlers=[
            health.healthz, health.readyz,
            create_static_files_router(path="/static", directories=[STATIC_DIR],
                                       name="static", include_in_schema=False),
            public.directory, webhooks.stripe_webhook, metrics_page.scrape, clinic_routes,
            devmail.mail_page, devmail.mail_json, devmail.mail_raw,
        ],
        dependencies={
            "db": Provide(lambda: database, sync_to_thread=False),
            "clinics": Provide(lambda: clinics, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "stripe_client": Provide(lambda: stripe_client, sync_to_thread=False),
            "live": Provide(lambda: live, sync_to_thread=False),
            "mail_inbox": Provide(lambda: inbox, sync_to_thread=False),
        },
        signature_namespace={"Database": Database, "Settings": Settings, "Live": Live,
                             "StripeClient": stripe.StripeClient, "Clinic": Clinic,
                             "ClinicDb": ClinicDb, "Clinics": Clinics, "Conn": Conn,
                             "StaffUser": StaffUser, "Filters": Filters,
                             "MailInbox": MailInbox},
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(env)),
        csrf_config=CSRFConfig(
            secret=settings.secret_key or secrets.token_urlsafe(32),
            cookie_name=CSRF_COOKIE,
            cookie_secure=settings.cookies_secure,
            cookie_samesite="lax",
            cookie_httponly=True,
            exclude=["/webhooks/stripe"],
        ),
        exception_handlers=errors.HANDLERS,
        before_send=[security_headers],
        lifespan=[lifespan],
        state=State({"db": database, "clinics": clinics, "settings": settings, "live": live,
                     "jobs": runner, "streams": Streams(settings), "metrics": measured,
                     # Called by dentbook.protocol when the server starts shutting down.
                     "drain": live.fanout.close_all}),
        request_max_body_size=64 * 1024,
        openapi_config=None,
        logging_config=None,  # ours: JSON lines (dentbook.logs)
    )
    attach(app, env)
    instrument(app, measured)
    app.asgi_handler = RequestIds(app.asgi_handler, settings.trusted_proxies)
    return app


def create_app_from_env() -> Litestar:
    """Factory for `uvicorn --factory` workers: settings come from the environment."""
    settings = load_settings()
    logs.configure(settings.log_level)  # worker processes start with no logging set up
    return create_app(settings)
