"""The shapes of names, addresses and slugs, in one place for the web forms, the operator
commands and (for the slug) the database's own check, which a test compares with this.
"""

from __future__ import annotations

import re
import unicodedata

# A clinic's path segment. sql/schema.sql checks the same pattern on dentbook.tenants.slug.
SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,48}[a-z0-9])?$"
SLUG = re.compile(SLUG_PATTERN)
# Top-level paths of the app itself: no clinic may take them.
RESERVED_SLUGS = frozenset({"static", "healthz", "readyz", "metrics", "webhooks", "dev",
                            "favicon.ico", "robots.txt"})

# Characters no name or address may carry: C0/C1 controls, zero-width and bidirectional
# formatting characters (which can make text display differently from what it is), the
# byte-order mark and the replacement character (a sign of broken encoding).
_INVISIBLE = "\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufffd"
NAME_PATTERN = rf"^[^{_INVISIBLE}]+$"
_NOT_IN_ADDRESS = rf"[^@\s{_INVISIBLE}]"
EMAIL_PATTERN = rf"^{_NOT_IN_ADDRESS}{{1,64}}@{_NOT_IN_ADDRESS}+\.[^@\s.{_INVISIBLE}]{{2,}}$"
EMAIL = re.compile(EMAIL_PATTERN)
PHONE_PATTERN = r"^\+?[0-9][0-9 ()-]{5,38}$"


def clean_text(value: str) -> str:
    """What every submitted text becomes before it is checked: NFC, trimmed, inner runs of
    white space folded to one space (so "Zofia\u00a0 Nowak" and "Zofia Nowak" are one name)."""
    return " ".join(unicodedata.normalize("NFC", value).split())


def valid_slug(slug: str) -> bool:
    return bool(SLUG.fullmatch(slug)) and slug not in RESERVED_SLUGS


def valid_email(email: str) -> bool:
    return len(email) <= 254 and bool(EMAIL.fullmatch(email))
