"""Where the non-Python parts live: `sql/`, `templates/`, `static/`, `locales/`.

An installed wheel carries them under `dentbook/_data/`; a source checkout (editable
install, tests) has them at the repository's top level.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).parent / "_data"
ROOT = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2]

SQL_DIR = ROOT / "sql"
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"
LOCALES_DIR = ROOT / "locales"
