"""Every message a person can read is in both catalogues, and translated into Polish."""

from __future__ import annotations

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from dentbook.resources import LOCALES_DIR, ROOT

METHODS = [("src/**.py", "python"), ("templates/stripe_local/**.html", "ignore"),
           ("templates/**.html", "jinja2"), ("templates/email/**.txt", "jinja2")]
JINJA = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
OPTIONS = {"templates/**.html": JINJA, "templates/email/**.txt": JINJA}


def _extracted() -> set[str]:
    found = extract_from_dir(str(ROOT), METHODS, keywords={"_": None, "gettext": None, "N_": None},
                             options_map=OPTIONS)
    return {msg if isinstance(msg, str) else msg[0] for _, _, msg, _, _ in found}


def _catalog(lang: str) -> dict[str, str]:
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id and isinstance(m.id, str)}


def test_every_message_is_in_both_catalogues():
    messages = _extracted()
    assert len(messages) > 50
    for lang in ("pl", "en"):
        missing = sorted(messages - set(_catalog(lang)))
        assert not missing, f"{lang} catalogue lacks: {missing}"


def test_polish_catalogue_is_fully_translated():
    untranslated = sorted(k for k, v in _catalog("pl").items() if not v)
    assert not untranslated, untranslated


def test_placeholders_survive_translation():
    import re

    for msgid, text in _catalog("pl").items():
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(re.findall(r"%\(\w+\)s", text)), msgid
