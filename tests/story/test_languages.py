"""BCP-47 tags: normalised, validated, named."""

from __future__ import annotations

import pytest

from serve_app.errors import InvalidRequest
from serve_app.story.languages import LANGUAGES, Language, normalize_tag, resolve_language


@pytest.mark.parametrize(
    ("tag", "code", "name"),
    [
        ("th", "th", "Thai"),
        ("JA", "ja", "Japanese"),
        (" fr ", "fr", "French"),
        ("pt-br", "pt-BR", "Brazilian Portuguese"),
        ("zh-hant", "zh-Hant", "Chinese (Traditional)"),
        ("zh-hant-tw", "zh-Hant-TW", "Chinese (Traditional) (TW)"),
        ("fr-CA", "fr-CA", "French (CA)"),
        ("es-419", "es-419", "Spanish (419)"),
    ],
)
def test_known_tags_resolve(tag: str, code: str, name: str) -> None:
    assert resolve_language(tag) == Language(code, name)


@pytest.mark.parametrize("tag", ["", "thai", "t", "en_US", "zh-Hans-CN-x", "ja-", "<script>", "1a"])
def test_malformed_tags_are_refused(tag: str) -> None:
    with pytest.raises(InvalidRequest, match="BCP-47"):
        resolve_language(tag)


@pytest.mark.parametrize("tag", ["en", "xx", "qaa-US"])
def test_unlisted_languages_are_refused_with_the_list(tag: str) -> None:
    with pytest.raises(InvalidRequest, match="unsupported language") as info:
        resolve_language(tag)
    assert "th" in info.value.detail and "ja" in info.value.detail


def test_table_keys_are_normalised() -> None:
    assert all(normalize_tag(code) == code for code in LANGUAGES)
    assert "en" not in LANGUAGES
