"""The hosted test Checkout page: what is paid for, in the payer's language, and the ways
to pay a Polish Checkout offers (card, BLIK, Przelewy24, bank transfer)."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
import stripe

from conftest import Receiver, Running, control_pay, session_params, verified

VISIT = "Klinika Alfa, dr Anna Nowak\nwtorek, 3 czerwca 2025, 10:30"


def pln_session(svc: Running, **extra: Any) -> stripe.checkout.Session:
    params = session_params(**extra)
    params["line_items"] = [{"quantity": 1, "price_data": {
        "currency": "pln", "unit_amount": 5000,
        "product_data": {"name": "Klinika Alfa: Przegląd", "description": VISIT}}}]
    return svc.client.v1.checkout.sessions.create(params=params)


def text_of(page: httpx.Response) -> str:
    return html.unescape(page.text)


def label(page: httpx.Response, for_id: str) -> str:
    m = re.search(rf'<label for="{for_id}">([^<]+)</label>', page.text)
    assert m, f"no label for #{for_id}"
    return m.group(1)


def test_polish_page_shows_the_visit_and_the_amount_in_polish(svc: Running) -> None:
    s = pln_session(svc, locale="pl")
    page = httpx.get(s.url)
    assert page.status_code == 200 and page.headers["content-language"] == "pl"
    assert '<html lang="pl">' in page.text
    text = text_of(page)
    assert "<h1>Zapłać 50,00\xa0zł</h1>" in text
    assert "Klinika Alfa: Przegląd" in text and VISIT in text
    assert (label(page, "card"), label(page, "blik_code")) == ("Numer karty", "Kod BLIK")
    for words in ("Podsumowanie zamówienia", "Przelewy24", "Zapłać 50,00\xa0zł kodem BLIK",
                  "Płatność z opóźnieniem (przelew bankowy)", "Anuluj i wróć"):
        assert words in text, words
    assert "Pay" not in text and "PLN" not in text


def test_english_page_and_browser_language_for_auto(svc: Running) -> None:
    page = httpx.get(pln_session(svc, locale="en").url)
    assert '<html lang="en">' in page.text and "<h1>Pay PLN\xa050.00</h1>" in text_of(page)
    assert label(page, "card") == "Card number" and VISIT in text_of(page)

    auto = pln_session(svc, locale="auto").url
    assert '<html lang="pl">' in httpx.get(auto, headers={"Accept-Language": "pl-PL"}).text
    assert '<html lang="en">' in httpx.get(auto, headers={"Accept-Language": "de"}).text
    # Stripe would speak Portuguese; this page knows Polish and English only.
    other = pln_session(svc, locale="pt-BR")
    assert other.locale == "pt-BR" and '<html lang="en">' in httpx.get(other.url).text


def test_unknown_session_page_follows_the_browser(svc: Running) -> None:
    page = httpx.get(f"{svc.base}/pay/cs_test_nope", headers={"Accept-Language": "pl"})
    assert page.status_code == 404 and '<html lang="pl">' in page.text
    assert "Nie znaleziono płatności" in text_of(page)


def test_card_declined_in_polish_keeps_the_number_and_focus(svc: Running) -> None:
    s = pln_session(svc, locale="pl")
    r = httpx.post(s.url, data={"method": "card", "card": "4000 0000 0000 0002"})
    assert r.status_code == 402 and 'data-error="card_declined"' in r.text
    assert "Karta została odrzucona." in text_of(r)
    card = re.search(r'<input type="text" id="card"[^>]*>', r.text)
    assert card is not None
    for attr in ('aria-invalid="true"', "autofocus", 'value="4000 0000 0000 0002"',
                 'aria-describedby="card-hint pay-error"'):
        assert attr in card.group(0), attr


@pytest.mark.parametrize(("code", "status", "mark"), [
    ("000000", 402, "blik_declined"), ("12345", 400, "invalid_blik"),
    ("12345a", 400, "invalid_blik"), ("", 400, "invalid_blik"),
])
def test_blik_refusals(svc: Running, receiver: Receiver, code: str, status: int,
                       mark: str) -> None:
    s = pln_session(svc, locale="en")
    r = httpx.post(s.url, data={"method": "blik", "blik_code": code})
    assert r.status_code == status and f'data-error="{mark}"' in r.text
    field = re.search(r'<input type="text" id="blik_code"[^>]*>', r.text)
    assert field is not None and 'aria-invalid="true"' in field.group(0)
    assert svc.client.v1.checkout.sessions.retrieve(s.id).status == "open"
    assert receiver.deliveries == []


def test_blik_pays_at_once(svc: Running, receiver: Receiver) -> None:
    s = pln_session(svc, locale="pl")
    r = httpx.post(s.url, data={"method": "blik", "blik_code": "123 456"})
    assert r.status_code == 303
    event = verified(receiver.wait_for("checkout.session.completed")[0])
    assert event.data.object.payment_status == "paid"
    pi = svc.client.v1.payment_intents.retrieve(event.data.object.payment_intent)
    assert (pi.status, pi.payment_method_types) == ("succeeded", ["blik"])


def test_przelewy24_completes_unpaid_then_succeeds(svc: Running, receiver: Receiver) -> None:
    s = pln_session(svc, locale="pl")
    assert httpx.post(s.url, data={"method": "p24"}).status_code == 303
    completed = verified(receiver.wait_for("checkout.session.completed")[0])
    assert completed.data.object.payment_status == "unpaid"
    pi_id = completed.data.object.payment_intent
    pi = svc.client.v1.payment_intents.retrieve(pi_id)
    assert (pi.status, pi.payment_method_types) == ("processing", ["p24"])
    settled = verified(receiver.wait_for("checkout.session.async_payment_succeeded")[0])
    assert settled.data.object.payment_status == "paid"
    assert svc.client.v1.payment_intents.retrieve(pi_id).status == "succeeded"
    waiting = httpx.get(s.url)
    assert waiting.status_code == 410 and "płatność otrzymana" in text_of(waiting)


@pytest.mark.parametrize(("form", "pm_type", "paid"), [
    ({"method": "card", "card": "4242424242424242"}, "card", "paid"),
    ({"method": "blik", "blik_code": "777123"}, "blik", "paid"),
    ({"method": "p24"}, "p24", "unpaid"),
    ({"method": "delayed_success"}, "customer_balance", "unpaid"),
    ({"method": "delayed_failure"}, "customer_balance", "unpaid"),
])
def test_control_endpoint_methods(svc: Running, form: dict[str, str], pm_type: str,
                                  paid: str) -> None:
    s = pln_session(svc)
    r = control_pay(svc, s.id, **form)
    assert r.status_code == 200 and r.json()["payment_status"] == paid
    pi = svc.client.v1.payment_intents.retrieve(r.json()["payment_intent"])
    assert pi.payment_method_types == [pm_type]


def test_methods_follow_the_currency_and_the_session(svc: Running) -> None:
    eur = svc.client.v1.checkout.sessions.create(params=session_params())
    assert eur.payment_method_types == ["card", "p24", "customer_balance"]
    page = httpx.get(eur.url).text
    assert 'id="blik_code"' not in page and 'value="p24"' in page
    refused = control_pay(svc, eur.id, method="blik", blik_code="123456")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "method"

    pln = pln_session(svc)
    assert pln.payment_method_types == ["card", "blik", "p24", "customer_balance"]

    card_only = pln_session(svc, payment_method_types=["card"])
    page = httpx.get(card_only.url).text
    assert 'id="card"' in page and 'id="blik_code"' not in page
    assert 'value="p24"' not in page and 'value="delayed_success"' not in page
    assert control_pay(svc, card_only.id, method="p24").status_code == 400

    with pytest.raises(stripe.InvalidRequestError) as err:
        svc.client.v1.checkout.sessions.create(
            params=session_params(payment_method_types=["blik"]))
    assert err.value.param == "payment_method_types"
    with pytest.raises(stripe.InvalidRequestError) as err:
        svc.client.v1.checkout.sessions.create(
            params=session_params(payment_method_types=["ideal"]))
    assert err.value.param == "payment_method_types[0]"


def test_locale_is_checked(svc: Running) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        pln_session(svc, locale="klingon")
    assert err.value.param == "locale"
