"""The development inbox: what the local mail sink caught, at `GET /dev/mail` (a page),
`GET /dev/mail.json` and `GET /dev/mail/{id}.eml` (the raw message).

`mail_inbox` is None when mail goes out through a real SMTP server; then all three answer
404, so a production server never shows anyone's mail.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, get
from litestar.params import FromPath
from litestar.response import Response, Template

from dentbook.errors import NotFound
from dentbook.mail.inbox import MailInbox, MessageSummary
from dentbook.web.render import page, request_locale
from dentbook.web.state import AppState

NO_STORE = {"Cache-Control": "no-store"}


@get("/dev/mail", name="dev_mail", sync_to_thread=True)
def mail_page(request: Request[Any, Any, Any], state: AppState) -> Template:
    response = page(request, "pages/dev_mail.html", request_locale(request),
                    mails=_inbox(state.mail_inbox).messages(),
                    zone=ZoneInfo("UTC"))
    response.headers.update(NO_STORE)
    return response


@get("/dev/mail.json", name="dev_mail_json", sync_to_thread=True)
def mail_json(state: AppState) -> Response[list[MessageSummary]]:
    return Response(_inbox(state.mail_inbox).messages(), headers=NO_STORE)


@get("/dev/mail/{file_name:str}", name="dev_mail_raw", sync_to_thread=True)
def mail_raw(state: AppState, file_name: FromPath[str]) -> Response[bytes]:
    message_id = file_name.removesuffix(".eml")
    raw = _inbox(state.mail_inbox).raw(message_id) if file_name.endswith(".eml") else None
    if raw is None:
        raise NotFound(file_name)
    return Response(raw, media_type="message/rfc822", headers={
        **NO_STORE, "Content-Disposition": f'inline; filename="{message_id}.eml"'})


def _inbox(inbox: MailInbox | None) -> MailInbox:
    if inbox is None:
        raise NotFound("no local mail sink: mail goes out through SMTP")
    return inbox
