"""TOTP codes from the real pyotp at fixed times: window, replay, malformed input; QR; recovery codes."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import segno

from dentbook import totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# 2026-03-02 10:00:10 UTC: 10 s into its 30-second step.
NOW = datetime(2026, 3, 2, 10, 0, 10, tzinfo=UTC)
STEP = timedelta(seconds=30)


def code_at(moment: datetime, secret: str = SECRET) -> str:
    return pyotp.TOTP(secret).at(moment)


def counter_at(moment: datetime) -> int:
    return int(moment.timestamp()) // 30


def test_new_secret_is_160_bit_base32_and_usable_by_pyotp() -> None:
    secret = totp.new_secret()
    assert len(base64.b32decode(secret)) == 20
    assert secret != totp.new_secret()
    assert totp.verify(secret, code_at(NOW, secret), None, now=NOW) == counter_at(NOW)


def test_current_code_returns_its_counter() -> None:
    assert totp.verify(SECRET, code_at(NOW), None, now=NOW) == counter_at(NOW)


def test_rfc6238_sha1_reference_vector() -> None:
    # RFC 6238 appendix B, T = 59 s, 8-digit SHA1 code 94287082: its last six digits.
    rfc_secret = base64.b32encode(b"12345678901234567890").decode()
    at_59 = datetime(1970, 1, 1, 0, 0, 59, tzinfo=UTC)
    assert totp.verify(rfc_secret, "287082", None, now=at_59, window=0) == 1


@pytest.mark.parametrize("drift", [-1, 1])
def test_one_step_of_clock_drift_is_accepted(drift: int) -> None:
    phone_time = NOW + drift * STEP
    assert totp.verify(SECRET, code_at(phone_time), None, now=NOW) == counter_at(phone_time)


@pytest.mark.parametrize("drift", [-2, 2, -3, 3])
def test_two_or_more_steps_of_drift_are_refused(drift: int) -> None:
    code = code_at(NOW + drift * STEP)
    # A six-digit collision with a code inside the window would make this test meaningless.
    assert code not in {code_at(NOW + k * STEP) for k in (-1, 0, 1)}
    assert totp.verify(SECRET, code, None, now=NOW) is None


def test_wider_window_accepts_more_drift() -> None:
    phone_time = NOW + 2 * STEP
    assert totp.verify(SECRET, code_at(phone_time), None, now=NOW, window=2) == counter_at(phone_time)


def test_same_code_twice_is_refused_within_its_window() -> None:
    code = code_at(NOW)
    first = totp.verify(SECRET, code, None, now=NOW)
    assert first == counter_at(NOW)
    assert totp.verify(SECRET, code, first, now=NOW) is None
    # Still refused later on while the code is inside the drift window.
    assert totp.verify(SECRET, code, first, now=NOW + STEP) is None


def test_older_code_is_refused_after_a_newer_one_was_used() -> None:
    used = totp.verify(SECRET, code_at(NOW), None, now=NOW)
    assert totp.verify(SECRET, code_at(NOW - STEP), used, now=NOW) is None


def test_next_code_is_accepted_after_the_last_one() -> None:
    used = totp.verify(SECRET, code_at(NOW), None, now=NOW)
    later = NOW + STEP
    assert totp.verify(SECRET, code_at(later), used, now=later) == counter_at(later)


def test_wrong_code_is_refused() -> None:
    window_codes = {code_at(NOW + k * STEP) for k in (-1, 0, 1)}
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in window_codes)
    assert totp.verify(SECRET, wrong, None, now=NOW) is None


def test_spaces_in_the_code_are_ignored() -> None:
    code = code_at(NOW)
    spaced = f" {code[:3]} {code[3:]}\t"
    assert totp.verify(SECRET, spaced, None, now=NOW) == counter_at(NOW)


@pytest.mark.parametrize("text", [
    "", "12345", "1234567", "12a456", "12-345", "١٢٣٤٥٦", "123456" * 20, "+12345", "12345.",
])
def test_malformed_codes_are_refused(text: str) -> None:
    assert totp.verify(SECRET, text, None, now=NOW) is None


def test_naive_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        totp.verify(SECRET, "123456", None, now=datetime(2026, 3, 2, 10, 0))


def test_default_time_is_now() -> None:
    code = pyotp.TOTP(SECRET).now()
    assert totp.verify(SECRET, code, None) is not None


def test_provisioning_uri_round_trips_through_pyotp() -> None:
    issuer = "dentbook · Klinika: A/B"
    uri = totp.provisioning_uri(SECRET, "anna+2fa@example.pl", issuer)
    assert uri.startswith("otpauth://totp/")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.secret == SECRET
    assert parsed.issuer == issuer
    assert parsed.name == "anna+2fa@example.pl"
    assert parsed.digits == 6 and parsed.interval == 30
    assert parsed.at(NOW) == code_at(NOW)


def test_qr_svg_is_svg_without_script_with_a_title_and_encodes_the_uri() -> None:
    uri = totp.provisioning_uri(SECRET, "anna@example.pl", "dentbook · Klinika Alfa")
    svg = totp.qr_svg(uri, title='Kod QR <dla> "aplikacji" & co')
    root = ET.fromstring(svg)
    assert root.tag == "svg"
    assert root.get("role") == "img"
    assert "<script" not in svg.lower()
    assert not [el for el in root.iter() if el.tag in {"script", "foreignObject", "style", "image"}]
    assert not [name for el in root.iter() for name in el.attrib if name.lower().startswith("on")]
    assert "href" not in svg
    title = root.find("title")
    assert title is not None and title.text == 'Kod QR <dla> "aplikacji" & co'
    # The drawing is the QR code segno makes for this URI, module for module.
    expected = segno.make(uri, error="m").svg_inline(scale=4, border=4, omitsize=True)
    path_data = re.search(r' d="([^"]+)"', expected)
    assert path_data is not None and path_data.group(1) in svg


def test_recovery_codes_are_unique_formatted_and_high_entropy() -> None:
    codes = totp.new_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    pattern = re.compile(r"[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}")
    assert all(pattern.fullmatch(c) for c in codes)
    # 12 symbols from a 32-letter alphabet: 60 bits.
    assert len(totp.RECOVERY_ALPHABET) == 32 == len(set(totp.RECOVERY_ALPHABET))
    assert not set("ilou") & set(totp.RECOVERY_ALPHABET)
    assert len(totp.new_recovery_codes(3)) == 3


def test_recovery_code_normalisation_round_trips() -> None:
    for code in totp.new_recovery_codes():
        assert totp.normalise_recovery_code(code) == code
        bare = code.replace("-", "")
        assert totp.normalise_recovery_code(bare.upper()) == code
        assert totp.normalise_recovery_code(f"  {bare[:6]} {bare[6:]} ") == code
        assert totp.hash_recovery_code(bare.upper()) == totp.hash_recovery_code(code)


def test_look_alike_letters_read_as_digits() -> None:
    assert totp.normalise_recovery_code("OIL0-1111-2222") == "0110-1111-2222"


@pytest.mark.parametrize("text", ["", "abcd-efgh-jkm", "abcd-efgh-jkmnp", "abcd-efgh-jku!", "u" * 12,
                                  "a" * 100])
def test_malformed_recovery_codes_normalise_to_none(text: str) -> None:
    assert totp.normalise_recovery_code(text) is None


def test_recovery_code_hash_is_sha256_hex_and_distinct() -> None:
    codes = totp.new_recovery_codes()
    hashes = {totp.hash_recovery_code(c) for c in codes}
    assert len(hashes) == 10
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    with pytest.raises(ValueError):
        totp.hash_recovery_code("not a code")
