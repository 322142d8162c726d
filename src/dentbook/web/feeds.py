"""A doctor's calendar feed over HTTP: `GET /{slug}/feeds/{token}.ics`, no sign-in (the
token is the key). Unknown, malformed and rotated tokens are all the same 404."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Response

from dentbook import feeds
from dentbook.errors import NotFound
from dentbook.tenancy import ClinicDb

# Only the doctor's own calendar app may keep a copy, and it asks again each time (a 304
# when nothing changed).
_CACHE = "private, no-cache"


@get("/feeds/{feed:str}", name="doctor_feed")
async def doctor_feed(request: Request[Any, Any, Any], clinic_db: NamedDependency[ClinicDb],
                      feed: FromPath[str]) -> Response[bytes]:
    found = await feeds.read(clinic_db, feed.removesuffix(".ics")) \
        if feed.endswith(".ics") else None
    if found is None:
        raise NotFound("feed")
    headers = {"ETag": found.etag, "Cache-Control": _CACHE}
    if found.matches(request.headers.get("if-none-match")):
        return Response(b"", status_code=304, headers=headers)
    return Response(found.body, media_type="text/calendar; charset=utf-8",
                    headers={**headers, "Content-Disposition": 'inline; filename="calendar.ics"'})
