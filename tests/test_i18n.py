"""Every sentence a person can read exists in Korean and in English."""

import json
import re
from importlib import resources

import pytest

from picup import i18n
from picup.errors import STATUS


def flatten(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def catalogue(lang):
    text = resources.files("picup.translations").joinpath(f"{lang}.json").read_text("utf-8")
    return dict(flatten(json.loads(text)))


def test_both_catalogues_have_the_same_strings():
    english, korean = catalogue("en"), catalogue("ko")
    assert sorted(set(english) - set(korean)) == [], "missing in Korean"
    assert sorted(set(korean) - set(english)) == [], "missing in English"


def test_placeholders_match_between_languages():
    english, korean = catalogue("en"), catalogue("ko")
    for key, text in english.items():
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", korean[key])), key


@pytest.mark.parametrize("code", sorted(STATUS))
def test_every_error_code_has_a_message_in_both_languages(code):
    for lang in i18n.LANGUAGES:
        assert f"errors.{code}" in catalogue(lang), f"{code} has no {lang} message"


@pytest.mark.parametrize("header, expected", [
    ("ko-KR,ko;q=0.9,en-US;q=0.8", "ko"),
    ("en-US,en;q=0.9", "en"),
    ("fr-FR,fr;q=0.9,ko;q=0.5", "ko"),
    ("fr-FR", "en"),
    ("", "en"),
    ("ko;q=0.2,en;q=0.8", "en"),
])
def test_the_language_comes_from_the_browser(header, expected):
    assert i18n.negotiate(header) == expected
