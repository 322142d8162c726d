"""Words shared by e-mails, calendar files and pages: gettext bound to a language, and the
clinic's cancellation policy said in one sentence."""

from __future__ import annotations

import re
from collections.abc import Callable

from babel.numbers import format_percent
from babel.units import format_unit

from dentbook.i18n import translations

Translate = Callable[..., str]
_BREAKING_SPACE = re.compile(r"[^\S\xa0\u202f]+")


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is used."""
    return message


def translator(locale: str) -> Translate:
    """`_("Hello %(name)s", name=n)`: the message in `locale`, with its placeholders filled."""
    gettext = translations(locale).gettext

    def translate(message: str, **variables: object) -> str:
        text = str(gettext(message))
        return text % variables if variables else text
    return translate


def one_line(text: str) -> str:
    """Text for a header or a calendar field: runs of whitespace (CR and LF too) become one
    space; no-break spaces stay, as Babel puts them between an amount and its currency."""
    return _BREAKING_SPACE.sub(" ", text).strip()


def policy_sentence(locale: str, window_hours: int, late_refund_percent: int,
                    deposit_minor: int = 1) -> str:
    """E.g. "Free cancellation until 24 hours before the visit; after that the deposit is not
    refunded." A visit with no deposit, or a policy that refunds in full at any time, gets the
    sentence saying so."""
    _ = translator(locale)
    if deposit_minor <= 0:
        return _("You can cancel free of charge at any time before the visit.")
    if window_hours <= 0 or late_refund_percent >= 100:
        return _("You can cancel with a full refund of the deposit at any time before the visit.")
    # Polish inflects the hour after "do" by number; its short unit ("24 godz.") never changes.
    window = format_unit(window_hours, "duration-hour", length="short" if locale == "pl" else "long",
                         locale=locale)
    if late_refund_percent <= 0:
        return _("Free cancellation until %(window)s before the visit; after that the deposit "
                 "is not refunded.", window=window)
    return _("Free cancellation until %(window)s before the visit; after that %(share)s of the "
             "deposit is refunded.", window=window,
             share=format_percent(late_refund_percent / 100, locale=locale))
