"""What the hosted test Checkout page says, in Polish and English.

The page stands in for Stripe's own, which Stripe translates, so its words live here
rather than in dentbook's catalogues; the session's `locale` picks the language.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dentbook import i18n

LANGUAGES = ("pl", "en")

_TEXTS: dict[str, tuple[str, str]] = {  # key: (English, Polish)
    "badge": ("Test mode: no real money moves",
              "Tryb testowy: żadne prawdziwe pieniądze nie są pobierane"),
    "site": ("Test checkout", "Płatność testowa"),
    "missing_title": ("Checkout not found", "Nie znaleziono płatności"),
    "missing": ("There is no checkout session {sid}.", "Nie ma sesji płatności {sid}."),
    "pay_title": ("Pay {amount}", "Zapłać {amount}"),
    "payer": ("Payer's e-mail: {email}", "E-mail płacącego: {email}"),
    "summary": ("Order summary", "Podsumowanie zamówienia"),
    "item": ("Item", "Pozycja"),
    "amount": ("Amount", "Kwota"),
    "quantity": ("Quantity: {quantity}", "Ilość: {quantity}"),
    "total": ("Total", "Razem"),
    "methods": ("How would you like to pay?", "Jak chcesz zapłacić?"),
    "card": ("Card", "Karta płatnicza"),
    "card_number": ("Card number", "Numer karty"),
    "card_hint": ("Test cards: {ok} succeeds, {declined} is declined.",
                  "Karty testowe: {ok} – płatność udana, {declined} – odrzucona."),
    "expiry": ("Expiry (MM / YY)", "Data ważności (MM / RR)"),
    "cvc": ("CVC", "Kod CVC"),
    "pay_card": ("Pay {amount} by card", "Zapłać {amount} kartą"),
    "blik": ("BLIK", "BLIK"),
    "blik_code": ("BLIK code", "Kod BLIK"),
    "blik_hint": ("The 6-digit code from your banking app. Test: 000000 is declined, any "
                  "other 6 digits succeed.",
                  "6-cyfrowy kod z aplikacji bankowej. Test: 000000 – płatność odrzucona, "
                  "każde inne 6 cyfr – płatność udana."),
    "pay_blik": ("Pay {amount} with BLIK", "Zapłać {amount} kodem BLIK"),
    "p24": ("Przelewy24", "Przelewy24"),
    "p24_hint": ("You confirm the transfer at your bank; the payment is confirmed a moment "
                 "later.",
                 "Przelew potwierdzasz w swoim banku; płatność zostanie potwierdzona po "
                 "chwili."),
    "pay_p24": ("Pay {amount} with Przelewy24", "Zapłać {amount} przez Przelewy24"),
    "transfer": ("Delayed payment (bank transfer)", "Płatność z opóźnieniem (przelew bankowy)"),
    "transfer_hint": ("The checkout completes now; the transfer arrives, or fails, a little "
                      "later.",
                      "Sesja płatności zakończy się od razu; przelew dotrze (albo nie) nieco "
                      "później."),
    "transfer_outcome": ("Test outcome of the transfer", "Testowy wynik przelewu"),
    "will_succeed": ("Will succeed later", "Dotrze później"),
    "will_fail": ("Will fail later", "Nie dotrze"),
    "pay_transfer": ("Pay {amount} by bank transfer", "Zapłać {amount} przelewem"),
    "cancel": ("Cancel and go back", "Anuluj i wróć"),
    "back": ("Go back", "Wróć"),
    "expired": ("This checkout session has expired. No payment was taken.",
                "Ta sesja płatności wygasła. Nie pobrano żadnej opłaty."),
    "complete_paid": ("This checkout session is complete: payment received.",
                      "Ta sesja płatności jest zakończona: płatność otrzymana."),
    "complete_waiting": ("This checkout session is complete: waiting for the payment to "
                         "arrive.",
                         "Ta sesja płatności jest zakończona: czekamy na wpływ płatności."),
    "error_card_declined": ("Your card was declined.", "Karta została odrzucona."),
    "error_invalid_card": ("Your card number is invalid.", "Numer karty jest nieprawidłowy."),
    "error_blik_declined": ("The BLIK payment was declined in your banking app.",
                            "Płatność BLIK została odrzucona w aplikacji bankowej."),
    "error_invalid_blik": ("Enter the 6-digit BLIK code from your banking app.",
                           "Wpisz 6-cyfrowy kod BLIK z aplikacji bankowej."),
    "error_session_expired": ("This checkout session has expired.",
                              "Ta sesja płatności wygasła."),
    "error_session_complete": ("This checkout session is already complete.",
                               "Ta sesja płatności została już zakończona."),
    "error_invalid_request": ("This payment could not be made. Check the details and try "
                              "again.",
                              "Nie udało się zapłacić. Sprawdź dane i spróbuj ponownie."),
}


def language(session_locale: str | None, accept_language: str | None) -> str:
    """Polish or English: the session's `locale`, or the browser's when it is `auto`."""
    if session_locale in (None, "auto"):
        return i18n.choose(None, None, accept_language, default="en")
    return "pl" if session_locale.split("-")[0] == "pl" else "en"


def translator(lang: str) -> Callable[..., str]:
    """`tr(key, **values)`: the text for `key` in `lang`, with its `{placeholders}` filled."""
    column = 1 if lang == "pl" else 0

    def tr(key: str, **values: Any) -> str:
        return _TEXTS[key][column].format(**values)

    return tr
