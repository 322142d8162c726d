"""Polish and English: catalogues, choosing the locale, and locale-aware formatting.

Catalogues are `locales/{pl,en}/LC_MESSAGES/messages.po`, compiled in memory at start-up
(no generated files to keep in sync). Message ids are English.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.core import UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from dentbook.resources import LOCALES_DIR

LOCALES = ("pl", "en")
COOKIE = "lang"


@cache
def translations(locale: str) -> Translations:
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def choose(query: str | None, cookie: str | None, accept_language: str | None,
           default: str = "pl") -> str:
    """`?lang=`, then the cookie, then Accept-Language, then the clinic's default."""
    for candidate in (query, cookie):
        if candidate in LOCALES:
            return candidate
    if accept_language:
        wanted = [part.split(";")[0].strip().replace("-", "_")
                  for part in accept_language.split(",")[:20]]
        try:
            found = Locale.negotiate([w for w in wanted if w and len(w) < 20], list(LOCALES))
        except (UnknownLocaleError, ValueError):
            found = None
        if found is not None:
            return str(found.language)
    return default if default in LOCALES else "pl"


# Formatting with Babel costs ~40 µs a value; the same slots, days and amounts are printed
# on every page and every lost race's answer, so each result is kept (bounded).
@lru_cache(maxsize=8192)
def format_day(day: date, locale: str) -> str:
    return dates.format_date(day, format="EEEE, d MMMM", locale=locale)


@lru_cache(maxsize=8192)
def format_short_day(day: date, locale: str) -> str:
    return dates.format_date(day, format="EEE d.MM" if locale == "pl" else "EEE MMM d",
                             locale=locale)


@lru_cache(maxsize=8192)
def format_date_long(day: date, locale: str) -> str:
    return dates.format_date(day, format="long", locale=locale)


def format_time(instant: datetime, zone: ZoneInfo, locale: str) -> str:
    """24-hour "HH:mm" in both languages (the grid prints ~80 of these: no Babel here)."""
    return instant.astimezone(zone).strftime("%H:%M")


@lru_cache(maxsize=8192)
def format_datetime(instant: datetime, zone: ZoneInfo, locale: str) -> str:
    return dates.format_datetime(instant, format="EEEE, d MMMM y, HH:mm",
                                 tzinfo=zone, locale=locale)


@lru_cache(maxsize=8192)
def format_money(minor: int, currency: str, locale: str) -> str:
    code = currency.upper()
    digits = numbers.get_currency_precision(code)
    # English has no symbol for most currencies and would print "PLN50.00".
    pattern = "¤\u00a0#,##0" + ("." + "0" * digits if digits else "") if locale == "en" else None
    return numbers.format_currency(Decimal(minor).scaleb(-digits), code, format=pattern,
                                   locale=locale, currency_digits=pattern is None)
