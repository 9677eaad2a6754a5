"""Reading ``openai`` SDK chat streams in tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def choices_of(chunks: Iterable[Any]) -> tuple[dict[int, str], list[int]]:
    """Each choice's text by ``index``, and the indices in the order their choices finished."""
    texts: dict[int, str] = {}
    finished: list[int] = []
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finished.append(choice.index)
    return texts, finished
