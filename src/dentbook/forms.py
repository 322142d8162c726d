"""The one parsing layer: form fields and query parameters into typed `msgspec.Struct`s.

Each model declares its fields with constraints (ids, instants, e-mail, lengths, choices);
`parse` checks every field on its own, so the page can show every error at once, each as
a message id the templates know (`required`, `invalid_<field>`). Text is normalised first
(`rules.clean_text`). An id in the address that is malformed is simply unknown: fields
marked `UNKNOWN_IS_404` raise NotFound instead, like an id that exists nowhere.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec

from dentbook import rules
from dentbook.errors import Invalid, NotFound

S = TypeVar("S", bound=msgspec.Struct)

UNKNOWN_IS_404 = {"unknown_is_404": True}
# Free text is never normalised away (passwords, codes): mark such fields.
VERBATIM = {"verbatim": True}

Id = Annotated[UUID, msgspec.Meta()]
PathId = Annotated[UUID, msgspec.Meta(extra=UNKNOWN_IS_404)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=rules.NAME_PATTERN)]
Email = Annotated[str, msgspec.Meta(max_length=254, pattern=rules.EMAIL_PATTERN)]
Phone = Annotated[str, msgspec.Meta(max_length=40, pattern=rules.PHONE_PATTERN)]
Note = Annotated[str, msgspec.Meta(max_length=500, pattern=rules.NAME_PATTERN)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, extra=VERBATIM)]
# An instant with its offset, as the forms carry slot starts (ISO 8601). Dates and instants
# are kept to the years 1900-2999, so date arithmetic on them never overflows.
Instant = Annotated[datetime, msgspec.Meta(tz=True)]
Day = date


def parse(model: type[S], raw: Mapping[str, Any]) -> S:
    """`raw` (form or query values, strings) as `model`, or Invalid with one message id per
    bad field (NotFound for a malformed id marked UNKNOWN_IS_404)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, extra in _fields(model):
        value = raw.get(field.encode_name)
        if isinstance(value, str):
            value = value if extra.get("verbatim") else rules.clean_text(value)
        if value in (None, ""):
            if field.required:
                errors[field.name] = "required"
            continue
        try:
            converted = msgspec.convert(value, field.type, strict=False)
        except msgspec.ValidationError:
            if extra.get("unknown_is_404"):
                raise NotFound(field.name) from None
            errors[field.name] = f"invalid_{field.name}"
            continue
        if isinstance(converted, (datetime, date)) and not 1900 <= converted.year <= 2999:
            errors[field.name] = f"invalid_{field.name}"
            continue
        values[field.name] = converted
    if errors:
        raise Invalid(errors)
    return model(**values)


def path_id(value: str) -> UUID:
    """An id from the address; a malformed one is simply unknown (NotFound), like an id
    that exists nowhere."""
    try:
        return msgspec.convert(value, UUID, strict=False)
    except msgspec.ValidationError:
        raise NotFound("id") from None


@cache
def _fields(model: type[msgspec.Struct]) -> tuple[tuple[msgspec.structs.FieldInfo, dict[str, Any]], ...]:
    """A model's fields with their Meta extras, read once (inspecting annotations is slow)."""
    return tuple((f, _extra(f.type)) for f in msgspec.structs.fields(model))


def _extra(annotation: Any) -> dict[str, Any]:
    """The `extra` of an annotation's msgspec.Meta (looking inside `X | None` too)."""
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, msgspec.Meta) and meta.extra:
            return dict(meta.extra)
    for arg in typing.get_args(annotation):
        if found := _extra(arg):
            return found
    return {}
