"""The clinic's privacy notice over HTTP: the public page (any version, `?version=N`; 0 is
the default text) and the admin's page to save a new version."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from dentbook import notice
from dentbook.db import Conn
from dentbook.errors import Invalid, NotFound
from dentbook.forms import parse
from dentbook.staff import StaffUser
from dentbook.tenancy import Clinic
from dentbook.web.guards import admin
from dentbook.web.render import PRIVATE, page


@get("/privacy", name="privacy")
async def privacy_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                       anon_tx: NamedDependency[Conn], locale: NamedDependency[str]) -> Template:
    asked = parse(notice.VersionQuery, request.query_params).version
    controller = await notice.controller(anon_tx)
    version = controller.current_version if asked is None else asked
    if version > controller.current_version:
        raise NotFound("version")
    saved = await notice.saved(anon_tx, version) if version else None
    if version and saved is None:
        raise NotFound("version")
    text = saved.body(locale) if saved else notice.default_text(controller, locale)
    return page(request, "pages/privacy.html", locale, clinic=clinic, controller=controller,
                version=version, saved=saved, blocks=notice.blocks(text),
                versions=await notice.versions(anon_tx))


@get("/staff/settings/privacy", name="privacy_settings", guards=[admin])
async def settings_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                        staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                        locale: NamedDependency[str]) -> Template:
    return await _settings(request, clinic, staff_user, staff_tx, locale)


@post("/staff/settings/privacy", name="privacy_settings_submit", guards=[admin], status_code=303)
async def settings_submit(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                          staff_user: NamedDependency[StaffUser], staff_tx: NamedDependency[Conn],
                          locale: NamedDependency[str]) -> Template | Redirect:
    raw = {k: notice.normalise(v) for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        form = parse(notice.NoticeForm, raw)
    except Invalid as exc:
        return await _settings(request, clinic, staff_user, staff_tx, locale, 422, exc.fields, raw)
    await notice.save(staff_tx, form)
    return Redirect(request.app.state.urls("privacy_settings", slug=clinic.slug),
                    status_code=303, headers=PRIVATE)


async def _settings(request: Request[Any, Any, Any], clinic: Clinic, user: StaffUser, conn: Conn,
                    locale: str, status: int = 200, fields: dict[str, str] | None = None,
                    form: dict[str, str] | None = None) -> Template:
    controller = await notice.controller(conn)
    current = (await notice.saved(conn, controller.current_version)
               if controller.current_version else None)
    if form is None:
        form = {f"body_{lang}": current.body(lang) if current
                else notice.default_text(controller, lang) for lang in ("pl", "en")}
    response = page(request, "pages/privacy_settings.html", locale, status_code=status,
                    clinic=clinic, staff=user, controller=controller, current=current,
                    versions=await notice.versions(conn), fields=fields or {}, form=form,
                    limit=notice.MAX_LENGTH)
    response.headers.update(PRIVATE)
    return response
