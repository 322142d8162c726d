"""Two-factor sign-in building blocks: TOTP secrets and codes, the enrolment QR code, recovery codes.

TOTP is RFC 6238 as every authenticator app implements it: HMAC-SHA1, 6 digits, 30-second steps.
`verify` returns the time-step counter a code matched; the caller stores it per account and passes
it back next time, so a code (or an older one) is refused once used: an observed or phished code
cannot be replayed inside its window. Recovery codes are shown once and stored only as hashes.
Nothing here touches the network or the database; the web layer owns storage and throttling.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import pyotp
import segno

DIGITS = 6
STEP_SECONDS = 30
# Crockford's base32: no I, L, O or U, so a code copied from paper has no look-alike letters.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_GROUPS = 3
RECOVERY_GROUP_LENGTH = 4
# What people type for the letters Crockford leaves out.
_RECOVERY_ALIASES = str.maketrans({"o": "0", "i": "1", "l": "1"})
# Longer input is not a code; refuse it before doing any work on it.
_MAX_INPUT = 64


def new_secret() -> str:
    """A fresh shared secret: 160 random bits (RFC 4226's recommended length) as base32."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def provisioning_uri(secret: str, account_email: str, issuer: str) -> str:
    """The `otpauth://` URI an authenticator app reads from the QR code.

    The label is `issuer:account` with each part percent-encoded on its own, so a clinic name
    holding ':' or '/' cannot be mistaken for the separator or a path.
    """
    label = f"{quote(issuer, safe='')}:{quote(account_email, safe='')}"
    query = urlencode({"secret": secret, "issuer": issuer}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str, *, title: str) -> str:
    """The QR code of `uri` as an inline `<svg>` element for the enrolment page.

    Inline rather than a data: URI so the (translated) `title` is the image's accessible name.
    The markup is segno's: one `<path>` with presentation attributes, no script, no style
    element and no external reference; `title` is XML-escaped by segno. A white background
    and a quiet zone keep it scannable on a dark page.
    """
    qr = segno.make(uri, error="m")
    svg = qr.svg_inline(scale=4, border=4, dark="#000", light="#fff", omitsize=True,
                        svgclass="totp-qr", title=title)
    return svg.replace("<svg ", '<svg role="img" ', 1)


def _normalise_code(code: str) -> str | None:
    if len(code) > _MAX_INPUT:
        return None
    digits = "".join(code.split())
    if len(digits) != DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    return digits


def verify(secret: str, code: str, last_counter: int | None, now: datetime | None = None,
           window: int = 1) -> int | None:
    """The time-step counter `code` is valid for, or None when it is wrong, malformed or used.

    A code is accepted for the current step and `window` steps either side (clocks drift).
    Counters not greater than `last_counter` (the one stored at the last successful sign-in)
    are never tried: that refuses the same code twice and any code older than the last one.
    `now` must be timezone-aware; it defaults to the current time.
    """
    if window < 0:
        raise ValueError("window must not be negative")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    digits = _normalise_code(code)
    if digits is None:
        return None
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = otp.timecode(now)
    for counter in range(current - window, current + window + 1):
        if last_counter is not None and counter <= last_counter:
            continue
        if hmac.compare_digest(otp.generate_otp(counter), digits):
            return counter
    return None


def new_recovery_codes(n: int = 10) -> list[str]:
    """`n` distinct single-use codes like `7k2m-qx9d-04hz`: 12 base32 characters, 60 random bits."""
    codes: list[str] = []
    while len(codes) < n:
        chars = "".join(secrets.choice(RECOVERY_ALPHABET)
                        for _ in range(RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH))
        code = "-".join(chars[i:i + RECOVERY_GROUP_LENGTH]
                        for i in range(0, len(chars), RECOVERY_GROUP_LENGTH))
        if code not in codes:
            codes.append(code)
    return codes


def normalise_recovery_code(text: str) -> str | None:
    """The canonical `xxxx-xxxx-xxxx` form of what a person typed, or None if it cannot be a code.

    Case does not matter, dashes and spaces are optional, and O, I and L are read as 0, 1 and 1.
    """
    if len(text) > _MAX_INPUT:
        return None
    chars = "".join(text.replace("-", " ").split()).lower().translate(_RECOVERY_ALIASES)
    if len(chars) != RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH:
        return None
    if any(c not in RECOVERY_ALPHABET for c in chars):
        return None
    return "-".join(chars[i:i + RECOVERY_GROUP_LENGTH]
                    for i in range(0, len(chars), RECOVERY_GROUP_LENGTH))


def hash_recovery_code(code: str) -> str:
    """SHA-256 hex of the normalised code, for storing and for looking a typed code up.

    A plain fast hash is enough here, unlike for passwords: each code is 60 random bits, so
    there is no dictionary to try and a slow hash would add nothing worth its cost; it also
    lets the lookup be an indexed equality. A key would not raise the bar either: whoever can
    read these rows can read the TOTP secret beside them, which must be stored usable.
    """
    canonical = normalise_recovery_code(code)
    if canonical is None:
        raise ValueError("not a recovery code")
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
