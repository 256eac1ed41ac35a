"""Korean and English text, looked up by dotted key."""

from __future__ import annotations

import functools
import json
from importlib import resources

LANGUAGES = ("en", "ko")


def catalogue(lang: str) -> dict:
    """Every text in ``lang`` (English for an unknown language)."""
    return _catalog(lang if lang in LANGUAGES else "en")


@functools.cache
def _catalog(lang: str) -> dict:
    text = resources.files("picup.translations").joinpath(f"{lang}.json").read_text("utf-8")
    return json.loads(text)


def translate(key: str, lang: str, **params) -> str:
    """The text for ``key`` in ``lang`` (English when Korean lacks it)."""
    node = _catalog(lang if lang in LANGUAGES else "en")
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, str):
        if lang != "en":
            return translate(key, "en", **params)
        return key
    return node.format(**params) if params else node


def negotiate(accept_language: str | None, default: str = "en") -> str:
    """Pick ``ko`` or ``en`` from an ``Accept-Language`` header."""
    best, best_q = default, -1.0
    for item in (accept_language or "").split(","):
        lang, _, q = item.strip().partition(";q=")
        primary = lang.split("-")[0].lower()
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        if primary in LANGUAGES and weight > best_q:
            best, best_q = primary, weight
    return best
