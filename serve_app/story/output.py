"""Judging one model answer: empty output is an error, truncated output is trimmed.

Decision for answers cut off at ``max_tokens`` (``finish_reason == "length"``): they are
**accepted, trimmed to the last complete sentence** (a story that ends mid-word reads
worse than a shorter one), and reported as truncated so the API can say so. When the
text has no sentence end to trim to (e.g. Thai, which does not mark sentence ends),
it is kept whole and ``…`` is appended. Any other finish reason than ``stop`` or
``length`` (``content_filter``, ``abort``, ...) means the answer is not usable.
"""

from __future__ import annotations

import logging

from serve_app.engines.base import GenerationResult
from serve_app.errors import GenerationFailed

logger = logging.getLogger(__name__)

#: Sentence ends: Latin, ellipsis, CJK full stop, full-width ! and ?, Arabic ?, Devanagari.
_TERMINATORS = frozenset(".!?\u2026\u3002\uff01\uff1f\u061f\u0964")
#: Closing quotes and brackets that may follow a sentence end.
_CLOSERS = frozenset("\"')]\u201d\u2019\u00bb\u300d\u300f")
#: Latin terminators count only before white space or the end ("3.5" is no sentence end).
_NEED_SPACE = frozenset(".!?")
ELLIPSIS = "…"


def trim_to_sentence(text: str) -> str | None:
    """``text`` up to the end of its last complete sentence, or None if it has none."""
    for i in range(len(text) - 1, -1, -1):
        char = text[i]
        if char not in _TERMINATORS:
            continue
        end = i + 1
        while end < len(text) and text[end] in _CLOSERS:
            end += 1
        if char in _NEED_SPACE and end < len(text) and not text[end].isspace():
            continue
        head = text[:end].strip()
        return head if any(c.isalnum() for c in head) else None
    return None


def finished_text(result: GenerationResult, what: str) -> tuple[str, bool]:
    """The usable text of one answer and whether it was cut at ``max_tokens``.

    Args:
        what: what the answer is (``"story"``, ...), for messages.

    Raises:
        GenerationFailed: the answer is empty or white space only, or it ended for a
            reason other than ``stop`` or ``length``.
    """
    text = result.text.strip()
    if not text:
        raise GenerationFailed(f"the model returned an empty {what}")
    if result.finish_reason == "stop":
        return text, False
    if result.finish_reason != "length":
        raise GenerationFailed(f"the {what} ended early ({result.finish_reason[:40]})")
    logger.info("the %s reached its token limit; trimming it", what)
    trimmed = trim_to_sentence(text)
    return (trimmed if trimmed is not None else text + ELLIPSIS), True
