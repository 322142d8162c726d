"""Checking API parameters the way Stripe does and building the objects they describe.

Unknown parameters are refused like Stripe refuses them, so a typo in dentbook fails
here first rather than only against the real API.
"""

from __future__ import annotations

import re
from typing import Any

from dentbook.stripe_local.config import LocalStripeConfig
from dentbook.stripe_local.errors import invalid
from dentbook.stripe_local.methods import TYPES, default_types, offered
from dentbook.stripe_local.store import JSON, new_id, now

SESSION_PARAMS = frozenset({
    "mode", "line_items", "success_url", "cancel_url", "expires_at", "client_reference_id",
    "metadata", "customer_email", "locale", "payment_intent_data", "payment_method_types",
    "expand", "submit_type", "billing_address_collection", "allow_promotion_codes", "ui_mode",
})
REFUND_PARAMS = frozenset({"payment_intent", "charge", "amount", "reason", "metadata", "expand"})
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
_CURRENCY = re.compile(r"^[a-z]{3}$")
# Checkout's `locale` values; the hosted page itself speaks Polish and English only.
LOCALES = frozenset(
    "auto bg cs da de el en en-GB es es-419 et fi fil fr fr-CA hr hu id it ja ko lt lv ms mt "
    "nb nl pl pt pt-BR ro ru sk sl sv th tr vi zh zh-HK zh-TW".split()
)


def reject_unknown(params: JSON, allowed: frozenset[str]) -> None:
    for key in params:
        if key not in allowed:
            raise invalid(f"Received unknown parameter: {key}", param=key)


def text(params: JSON, key: str, param: str | None = None, *, required: bool = False) -> str | None:
    value = params.get(key)
    if value in (None, ""):
        if required:
            raise invalid(f"Missing required param: {param or key}.", param=param or key)
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {value!r}", param=param or key)
    return value


def integer(
    params: JSON, key: str, param: str | None = None, *, required: bool = False
) -> int | None:
    raw = text(params, key, param, required=required)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid(f"Invalid integer: {raw}", param=param or key) from None


def metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """Stripe's metadata rules: at most 50 keys, keys up to 40 and values up to 500 chars."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid hash", param=param)
    meta = {k: v for k, v in value.items() if v != ""}
    if len(meta) > 50:
        raise invalid("Metadata can have at most 50 keys.", param=param)
    for k, v in meta.items():
        if not isinstance(v, str) or len(k) > 40 or len(v) > 500:
            raise invalid(
                "Metadata keys can be at most 40 characters and values at most 500.",
                param=f"{param}[{k}]",
            )
    return meta


def _url(params: JSON, key: str) -> str | None:
    value = text(params, key)
    if value is not None and not value.startswith(("http://", "https://")):
        raise invalid("Not a valid URL", param=key)
    return value


def _line_item(item: Any, i: int) -> tuple[JSON, JSON]:
    """A line item and the product its `price_data[product_data]` describes."""
    at = f"line_items[{i}]"
    if not isinstance(item, dict):
        raise invalid("Invalid hash", param=at)
    if "price" in item:
        raise invalid("The local Stripe service supports only price_data.", param=f"{at}[price]")
    pd = item.get("price_data")
    if not isinstance(pd, dict):
        raise invalid(f"Missing required param: {at}[price_data].", param=f"{at}[price_data]")
    currency = (text(pd, "currency", f"{at}[price_data][currency]", required=True) or "").lower()
    if not _CURRENCY.match(currency):
        raise invalid(f"Invalid currency: {currency}", param=f"{at}[price_data][currency]")
    unit = integer(pd, "unit_amount", f"{at}[price_data][unit_amount]", required=True)
    product_data = pd.get("product_data")
    at_product = f"{at}[price_data][product_data]"
    if not isinstance(product_data, dict):
        raise invalid(f"Missing required param: {at_product}.", param=at_product)
    name = text(product_data, "name", f"{at_product}[name]", required=True)
    product: JSON = {
        "id": new_id("prod"), "object": "product", "name": name,
        "description": text(product_data, "description", f"{at_product}[description]"),
        "metadata": metadata(product_data.get("metadata"), f"{at_product}[metadata]"),
    }
    qty = integer(item, "quantity", f"{at}[quantity]", required=True)
    assert unit is not None and qty is not None
    if unit < 0 or unit > 99_999_999:
        raise invalid("Invalid unit_amount", param=f"{at}[price_data][unit_amount]")
    if qty < 1:
        raise invalid("Quantity must be at least 1.", param=f"{at}[quantity]")
    return {
        "id": new_id("li"), "object": "item", "description": name, "quantity": qty,
        "currency": currency, "amount_subtotal": unit * qty, "amount_total": unit * qty,
        "price": {"id": new_id("price"), "object": "price", "currency": currency,
                  "unit_amount": unit, "product": product["id"]},
    }, product


def _expires_at(params: JSON, cfg: LocalStripeConfig, created: int) -> int:
    value = integer(params, "expires_at")
    if value is None:
        return created + cfg.max_expiry_seconds
    if value < created + cfg.min_expiry_seconds:
        raise invalid(
            "The `expires_at` timestamp must be at least "
            f"{cfg.min_expiry_seconds // 60} minutes from Checkout Session creation.",
            param="expires_at",
        )
    if value > created + cfg.max_expiry_seconds:
        raise invalid(
            "The `expires_at` timestamp must be less than "
            f"{cfg.max_expiry_seconds // 3600} hours from Checkout Session creation.",
            param="expires_at",
        )
    return value


def _locale(params: JSON) -> str | None:
    value = text(params, "locale")
    if value is not None and value not in LOCALES:
        raise invalid(f"Invalid locale: must be one of {', '.join(sorted(LOCALES))}",
                      param="locale")
    return value


def _method_types(params: JSON, currency: str) -> list[str]:
    value = params.get("payment_method_types")
    if value in (None, ""):
        return default_types(currency)
    if not isinstance(value, list) or not value:
        raise invalid("Invalid array", param="payment_method_types")
    known = list(dict.fromkeys(TYPES.values()))
    for i, type_ in enumerate(value):
        if type_ not in known:
            raise invalid(f"Invalid payment_method_types[{i}]: the local Stripe service "
                          f"offers {', '.join(known)}", param=f"payment_method_types[{i}]")
        if not offered(type_, currency):
            raise invalid(f"The payment method type {type_} does not support the currency "
                          f"{currency}.", param="payment_method_types")
    return list(dict.fromkeys(value))


def build_session(params: JSON, cfg: LocalStripeConfig) -> tuple[JSON, list[JSON], list[JSON]]:
    """A new open `checkout.session`, its line items and their products."""
    reject_unknown(params, SESSION_PARAMS)
    mode = text(params, "mode", required=True)
    if mode != "payment":
        raise invalid("The local Stripe service supports only mode=payment.", param="mode")
    if text(params, "ui_mode") not in (None, "hosted"):
        raise invalid("The local Stripe service supports only ui_mode=hosted.", param="ui_mode")
    raw_items = params.get("line_items")
    if not isinstance(raw_items, list) or not raw_items:
        raise invalid("Missing required param: line_items.", param="line_items")
    made = [_line_item(item, i) for i, item in enumerate(raw_items)]
    items, products = [item for item, _ in made], [product for _, product in made]
    if len({it["currency"] for it in items}) != 1:
        raise invalid("All line items must use the same currency.", param="line_items")
    email = text(params, "customer_email")
    if email is not None and "@" not in email:
        raise invalid(f"Invalid email address: {email}", param="customer_email")
    ref = text(params, "client_reference_id")
    if ref is not None and len(ref) > 200:
        raise invalid("client_reference_id can be at most 200 characters.",
                      param="client_reference_id")
    pid = params.get("payment_intent_data") or {}
    if not isinstance(pid, dict):
        raise invalid("Invalid hash", param="payment_intent_data")
    created = now()
    sid = new_id("cs", 58)
    total = sum(it["amount_total"] for it in items)
    session: JSON = {
        "id": sid, "object": "checkout.session", "amount_subtotal": total,
        "amount_total": total, "cancel_url": _url(params, "cancel_url"),
        "client_reference_id": ref, "created": created, "currency": items[0]["currency"],
        "customer": None, "customer_details": None, "customer_email": email,
        "expires_at": _expires_at(params, cfg, created), "livemode": False,
        "locale": _locale(params), "metadata": metadata(params.get("metadata")),
        "mode": "payment", "payment_intent": None,
        "payment_method_types": _method_types(params, items[0]["currency"]),
        "payment_status": "unpaid", "status": "open", "success_url": _url(params, "success_url"),
        "ui_mode": "hosted", "url": f"{cfg.base_url}/pay/{sid}",
        "_pi_metadata": metadata(pid.get("metadata"), "payment_intent_data[metadata]"),
    }
    return session, items, products


def refund_args(params: JSON) -> tuple[str | None, str | None, int | None, str | None, JSON]:
    """(payment_intent, charge, amount, reason, metadata) of a refund request."""
    reject_unknown(params, REFUND_PARAMS)
    pi, charge = text(params, "payment_intent"), text(params, "charge")
    if pi is None and charge is None:
        raise invalid("One of `charge` or `payment_intent` is required.", param="payment_intent")
    amount = integer(params, "amount")
    if amount is not None and amount < 1:
        raise invalid("Invalid positive integer", param="amount")
    reason = text(params, "reason")
    if reason is not None and reason not in REFUND_REASONS:
        raise invalid(f"Invalid reason: must be one of {', '.join(sorted(REFUND_REASONS))}",
                      param="reason")
    return pi, charge, amount, reason, metadata(params.get("metadata"))
