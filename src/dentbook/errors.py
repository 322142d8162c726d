"""The few named failures domain code raises; `web/errors.py` maps them to answers."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"


class NotFound(DomainError):
    code = "not_found"


class Invalid(DomainError):
    """Input that cannot be accepted; `fields` maps form fields to message ids."""

    code = "invalid"

    def __init__(self, fields: dict[str, str] | None = None, message: str = "") -> None:
        super().__init__(message or ", ".join(f"{k}: {v}" for k, v in (fields or {}).items()))
        self.fields = fields or {}


class SlotTaken(DomainError):
    code = "slot_taken"


class SlotNotOffered(DomainError):
    code = "slot_not_offered"


class TooManyHolds(DomainError):
    code = "too_many_holds"


class PaymentUnavailable(DomainError):
    """Stripe could not open a Checkout Session; the hold was released."""

    code = "payment_unavailable"


class FormExpired(DomainError):
    """The form's CSRF token no longer matches the browser's cookie: send it again."""

    code = "form_expired"
