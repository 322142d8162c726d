"""Assembly: `create_app(settings) -> Litestar`."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Response
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.di import Provide
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from dentbook.db import Database
from dentbook.resources import STATIC_DIR
from dentbook.settings import Settings, load_settings
from dentbook.web import errors, health, public
from dentbook.web.render import make_environment

CSRF_COOKIE = "csrftoken"
# Every page loads only our own static files: no inline script, style or frame.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; "
       "form-action 'self' {checkout}")


def create_app(settings: Settings, db: Database | None = None) -> Litestar:
    database = db or Database(settings.database_url, min_size=settings.pool_min,
                              max_size=settings.pool_max)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await database.open()
        try:
            yield
        finally:
            await database.close()

    # The booking form's answer redirects to Checkout; form-action must allow it.
    csp = CSP.format(checkout=settings.stripe_api_base or "https://checkout.stripe.com")

    def security_headers(response: Response[Any]) -> Response[Any]:
        h = response.headers
        h.setdefault("Content-Security-Policy", csp)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("X-Frame-Options", "DENY")
        return response

    return Litestar(
        route_handlers=[
            health.healthz, health.readyz,
            create_static_files_router(path="/static", directories=[STATIC_DIR],
                                       name="static", include_in_schema=False),
            public.directory, public.clinic_page, public.slots_fragment,
        ],
        dependencies={
            "db": Provide(lambda: database, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
        },
        signature_namespace={"Database": Database, "Settings": Settings},
        template_config=TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(make_environment())),
        csrf_config=CSRFConfig(
            secret=settings.secret_key or secrets.token_urlsafe(32),
            cookie_name=CSRF_COOKIE,
            cookie_secure=settings.cookies_secure,
            cookie_samesite="lax",
            cookie_httponly=True,
            exclude=["/webhooks/stripe"],
        ),
        exception_handlers=errors.HANDLERS,
        after_request=security_headers,
        lifespan=[lifespan],
        request_max_body_size=64 * 1024,
        openapi_config=None,
    )


def create_app_from_env() -> Litestar:
    """Factory for `uvicorn --factory` workers: settings come from the environment."""
    return create_app(load_settings())
