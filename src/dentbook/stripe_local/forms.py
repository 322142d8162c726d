"""Stripe's bracket-notation form encoding (`a[b][0][c]=v`) turned into nested values."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from dentbook.stripe_local.errors import invalid

_TOKEN = re.compile(r"\[([^\[\]]*)\]")

Params = dict[str, Any]


def _split(key: str) -> list[str]:
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    tail = "[" + rest
    parts = _TOKEN.findall(tail)
    if "".join(f"[{p}]" for p in parts) != tail or not head:
        raise invalid(f"Invalid parameter name: {key}", param=key)
    return [head, *parts]


def _listify(node: Any) -> Any:
    """Dicts keyed only by indexes become lists, ordered by index, as Stripe reads them."""
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def parse_pairs(pairs: list[tuple[str, str]]) -> Params:
    """Build nested params; `x[]` appends, a repeated plain key keeps its last value."""
    root: dict[str, Any] = {}
    counters: dict[int, int] = {}
    for key, value in pairs:
        path = _split(key)
        node = root
        for i, part in enumerate(path):
            if part == "":
                part = str(counters.get(id(node), 0))
                counters[id(node)] = int(part) + 1
            if i == len(path) - 1:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise invalid(f"Invalid parameter name: {key}", param=key)
                node = child
    result = _listify(root)
    assert isinstance(result, dict)
    return result


def parse_form(raw: bytes | str) -> Params:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return parse_pairs(parse_qsl(text, keep_blank_values=True))


def fingerprint(raw: bytes | str) -> tuple[tuple[str, str], ...]:
    """Order-independent identity of a request's parameters, for idempotency checks."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return tuple(sorted(parse_qsl(text, keep_blank_values=True)))
