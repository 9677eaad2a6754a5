"""Translation target languages: BCP-47 tags, validated against a table of names.

A tag is accepted when it is well formed (``language[-Script][-REGION]``) and its full
form or a prefix of it (``zh-Hant`` of ``zh-Hant-TW``) is in :data:`LANGUAGES`;
``fr-CA`` is therefore "French (CA)". Tags are normalised to their conventional case
(``zh-hant-tw`` → ``zh-Hant-TW``). English is not a target: the story is already English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from serve_app.errors import InvalidRequest

#: Language tags with the names the translation prompt uses.
LANGUAGES: dict[str, str] = {
    "th": "Thai",
    "ja": "Japanese",
    "zh": "Chinese (Simplified)",
    "zh-Hans": "Chinese (Simplified)",
    "zh-Hant": "Chinese (Traditional)",
    "ko": "Korean",
    "vi": "Vietnamese",
    "id": "Indonesian",
    "ms": "Malay",
    "fil": "Filipino",
    "lo": "Lao",
    "km": "Khmer",
    "my": "Burmese",
    "hi": "Hindi",
    "bn": "Bengali",
    "ar": "Arabic",
    "he": "Hebrew",
    "fa": "Persian",
    "tr": "Turkish",
    "ru": "Russian",
    "uk": "Ukrainian",
    "pl": "Polish",
    "cs": "Czech",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "pt": "Portuguese",
    "pt-BR": "Brazilian Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "el": "Greek",
}

_TAG = re.compile(
    r"^(?P<lang>[A-Za-z]{2,3})(?:-(?P<script>[A-Za-z]{4}))?(?:-(?P<region>[A-Za-z]{2}|\d{3}))?$"
)


@dataclass(frozen=True)
class Language:
    """A translation target: its normalised BCP-47 ``code`` and English ``name``."""

    code: str
    name: str


def normalize_tag(tag: str) -> str:
    """``tag`` in conventional case, or :class:`InvalidRequest` if it is malformed."""
    match = _TAG.match(tag.strip())
    if match is None:
        raise InvalidRequest(
            f"language must be a BCP-47 tag such as 'th', 'ja' or 'pt-BR'; got {tag[:40]!r}"
        )
    parts = [match["lang"].lower()]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    return "-".join(parts)


def resolve_language(tag: str) -> Language:
    """The :class:`Language` for ``tag``.

    Raises:
        InvalidRequest: malformed, or a language without an entry in :data:`LANGUAGES`.
    """
    code = normalize_tag(tag)
    subtags = code.split("-")
    for n in range(len(subtags), 0, -1):
        known = "-".join(subtags[:n])
        if known in LANGUAGES:
            rest = "-".join(subtags[n:])
            return Language(code, f"{LANGUAGES[known]} ({rest})" if rest else LANGUAGES[known])
    supported = ", ".join(sorted(LANGUAGES))
    raise InvalidRequest(f"unsupported language {code!r}; supported: {supported}")
