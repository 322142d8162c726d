"""The ways the local Checkout takes money, as a Polish Checkout offers them.

Card and BLIK pay at once; Przelewy24 and the bank transfer complete the session unpaid
and settle later, like Stripe's delayed methods. Each maps to the Stripe payment method
type the PaymentIntent reports. Test rules: card 4242 4242 4242 4242 succeeds and
4000 0000 0000 0002 is declined; a BLIK code is any 6 digits, 000000 is declined; a
Przelewy24 payment always arrives; the bank transfer arrives or fails as chosen.
"""

from __future__ import annotations

import re

from dentbook.stripe_local.errors import StripeError

TYPES = {
    "card": "card",
    "blik": "blik",
    "p24": "p24",
    "delayed_success": "customer_balance",
    "delayed_failure": "customer_balance",
}
METHODS = tuple(TYPES)
DELAYED = frozenset({"p24", "delayed_success", "delayed_failure"})
# Stripe's presentment currencies for the local methods; unlisted types take any currency.
_CURRENCIES = {"blik": frozenset({"pln"}), "p24": frozenset({"pln", "eur"})}
CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
BLIK_DECLINED = "000000"


def offered(type_: str, currency: str) -> bool:
    allowed = _CURRENCIES.get(type_)
    return allowed is None or currency in allowed


def default_types(currency: str) -> list[str]:
    """What a session offers when created without `payment_method_types`."""
    return [t for t in dict.fromkeys(TYPES.values()) if offered(t, currency)]


def check_card(card: str) -> None:
    digits = re.sub(r"[\s-]", "", card)
    if digits == CARD_OK:
        return
    if digits == CARD_DECLINED:
        raise StripeError(402, "Your card was declined.", type_="card_error",
                          code="card_declined", extra={"decline_code": "generic_decline"})
    raise StripeError(402, "Your card number is invalid.", type_="card_error",
                      param="number", code="invalid_number")


def check_blik(code: str) -> None:
    digits = re.sub(r"\s", "", code)
    if not re.fullmatch(r"[0-9]{6}", digits):
        raise StripeError(400, "A BLIK code has 6 digits.", param="blik[code]",
                          code="payment_method_invalid_parameter")
    if digits == BLIK_DECLINED:
        raise StripeError(402, "The BLIK payment was declined.", type_="card_error",
                          code="payment_method_provider_decline",
                          extra={"decline_code": "generic_decline"})
