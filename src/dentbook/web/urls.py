"""Addresses by route name, and the one rule for "page or fragment".

Templates and redirects never assemble an address from strings: `url("slots", slug=…,
doctor=…)` fills the route's path parameters from the names it declares and puts every
other value in the query string (empty ones left out). `Here` is the page being shown, so
a link can be "this page, in English" without ever echoing the raw request path.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from litestar import Litestar, Request

_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")


class Urls:
    """`url(name, **values)` for the app's named routes."""

    def __init__(self, app: Litestar) -> None:
        self.app = app
        self._params: dict[str, dict[str, str]] = {}
        # An address depends only on its arguments: each is built once (pages ask for the
        # same static files, clinic and form addresses on every request).
        self._cached = functools.lru_cache(maxsize=8192)(self._build)

    def __call__(self, name: str, /, _fragment: str = "", **values: Any) -> str:
        """The route's address; `_fragment` becomes its `#fragment`."""
        # The type is part of the key: True and 1 are equal, but not the same address.
        items = tuple((k, type(v), v) for k, v in values.items())
        try:
            return self._cached(name, _fragment, items)
        except TypeError:  # a value that cannot be a cache key (none of ours today)
            return self._build(name, _fragment, items)

    def _build(self, name: str, _fragment: str, items: tuple[tuple[str, type, Any], ...]) -> str:
        values = {k: v for k, _, v in items}
        params = self._params.get(name)
        if params is None:
            index = self.app.get_handler_index_by_name(name)
            if index is None:
                raise LookupError(f"no route named {name!r}")
            params = self._params[name] = dict(_PARAM.findall(index["paths"][0]))
        # A `path` parameter (a static file's) keeps its slashes; any other is one segment.
        path = self.app.route_reverse(name, **{
            k: quote(str(values[k]), safe="/" if kind == "path" else "") for k, kind in params.items()})
        query = {k: str(v) for k, v in values.items() if k not in params and v not in (None, "")}
        return (path + (f"?{urlencode(query)}" if query else "")
                + (f"#{quote(_fragment)}" if _fragment else ""))


@dataclass(frozen=True)
class Here:
    """The page being shown: its route and the values that address it."""

    urls: Urls
    name: str
    values: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> str:
        """This page's address with some values changed (None removes one)."""
        return self.urls(self.name, **{**self.values, **changes})


def here(request: Request[Any, Any, Any], urls: Urls, status: int = 200) -> Here:
    """The page that answered `request` with its path and query values. An error page's
    links lead to the directory, never back to the asked (perhaps hostile) address."""
    handler = request.scope.get("route_handler")
    name = getattr(handler, "name", None)
    if not name or request.method != "GET" or status >= 400:
        return Here(urls, "directory")
    values = {k: v for k, v in request.query_params.items() if k != "lang"}
    return Here(urls, name, {**values, **request.path_params})


def is_fragment(request: Request[Any, Any, Any]) -> bool:
    """htmx asked for the fragment alone; a history restore always gets the whole page."""
    return (request.headers.get("hx-request") == "true"
            and request.headers.get("hx-history-restore-request") != "true")
