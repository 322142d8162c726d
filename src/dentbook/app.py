"""Assembly: `create_app(settings) -> Litestar`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from uuid import UUID

import stripe
from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import Message, Scope

from dentbook import jobs, logs, payments, retention, tenancy
from dentbook.agenda import Filters
from dentbook.db import Conn, Database
from dentbook.live.grids import Grids
from dentbook.live.hub import Live
from dentbook.logs import RequestIds
from dentbook.mail.inbox import MailInbox
from dentbook.metrics import Metrics, instrument
from dentbook.outbox import Outbox
from dentbook.payments import make_client
from dentbook.resources import STATIC_DIR
from dentbook.settings import Settings, load_settings
from dentbook.staff import StaffUser
from dentbook.tenancy import Clinic, ClinicDb, Clinics
from dentbook.web import (
    account,
    bookings,
    deps,
    desk,
    devmail,
    errors,
    health,
    invites,
    patients,
    privacy,
    public,
    streams,
    visits,
    webhooks,
)
from dentbook.web import audit as audit_pages
from dentbook.web import feeds as feed_pages
from dentbook.web import metrics as metrics_page
from dentbook.web import staff as staff_pages
from dentbook.web.cookies import secure_on_https
from dentbook.web.render import attach, make_environment
from dentbook.web.settings import ROUTER as SETTINGS_ROUTER
from dentbook.web.state import AppState
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

    runner = jobs.Runner(database, {"refund": refund,
                                    retention.KIND: partial(retention.run_job, database, settings)},
                         backoff=timedelta(seconds=settings.job_retry_seconds),
                         attempts=settings.job_attempts, prepare=(retention.ENSURE,))
    grids = Grids(database, settings, env)

    def clinic_changed(payload: str) -> None:
        """A clinic's details or setup changed ("": after a gap, anything may have)."""
        try:
            tenant = UUID(payload) if payload else None
        except ValueError:
            return
        clinics.forget(tenant)
        grids.clinic_changed(tenant)

    # LISTEN goes straight to PostgreSQL (a transaction pooler cannot keep a session's LISTEN).
    live = Live(database, clinics, grids, settings, env, settings.listen_url,
                {jobs.CHANNEL: runner.wake, tenancy.CHANNEL: clinic_changed})
    measured.pool_stats = database.pool.get_stats
    measured.listener_ready = lambda: live.listener.ready
    measured.grid_stats = grids.stats
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
            visits.visit_page, visits.visit_cancel, visits.visit_reschedule,
            visits.visit_reschedule_submit, visits.visit_ics,
            streams.calendar_events, streams.booking_events, streams.staff_events,
            staff_pages.ROUTER, desk.ROUTER, audit_pages.ROUTER,
            SETTINGS_ROUTER, invites.invite_page, invites.set_password, feed_pages.doctor_feed,
            account.ROUTER, patients.ROUTER,
            privacy.privacy_page, privacy.settings_page, privacy.settings_submit,
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
        signature_namespace={"Database": Database, "Settings": Settings, "Live": Live,
                             "StripeClient": stripe.StripeClient, "Clinic": Clinic,
                             "ClinicDb": ClinicDb, "Clinics": Clinics, "Conn": Conn,
                             "StaffUser": StaffUser, "Filters": Filters,
                             "MailInbox": MailInbox, "Grids": Grids, "AppState": AppState},
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
        before_send=[security_headers, secure_on_https],
        lifespan=[lifespan],
        # What every request may use, as `state: AppState` (web.state: not as dependencies).
        state=State({"db": database, "clinics": clinics, "grids": grids, "settings": settings,
                     "stripe_client": stripe_client, "live": live, "mail_inbox": inbox,
                     "jobs": runner, "streams": Streams(settings, measured.sse_streams), "metrics": measured,
                     # Called by dentbook.protocol when the server starts shutting down.
                     "drain": live.fanout.close_all}),
        request_max_body_size=64 * 1024,
        openapi_config=None,
        logging_config=None,  # ours: JSON lines (dentbook.logs)
    )
    routes = attach(app, env)

    def links(slug: str, token: str) -> tuple[str, str]:
        """A clinic's booking page and a patient's visit page, as e-mails link to them."""
        return (settings.base_url + routes("clinic", slug=slug),
                settings.base_url + routes("visit_page", slug=slug, token=token))

    runner.handlers["email"] = Outbox(database, settings, links).send_job
    instrument(app, measured)
    app.asgi_handler = RequestIds(app.asgi_handler, settings.trusted_proxies)
    return app


def create_app_from_env() -> Litestar:
    """Factory for `uvicorn --factory` workers: settings come from the environment."""
    settings = load_settings()
    logs.configure(settings.log_level)  # worker processes start with no logging set up
    return create_app(settings)
