"""Secrets that are links: an invitation's set-password link, a doctor's calendar feed.

A token is 256 random bits (`secrets.token_urlsafe(32)`, 43 characters); the database keeps
only its SHA-256, so a copy of the database opens no link. Anything not shaped like a token
is unknown without asking the database.
"""

from __future__ import annotations

import hashlib
import re
import secrets

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def new() -> tuple[str, bytes]:
    """A fresh token and the SHA-256 to store."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode("ascii")).digest()


def digest(token: str) -> bytes | None:
    """The stored form of a well-formed token, else None."""
    if not _TOKEN.fullmatch(token):
        return None
    return hashlib.sha256(token.encode("ascii")).digest()
