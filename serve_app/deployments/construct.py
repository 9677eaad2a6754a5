"""Constructing deployment classes outside Ray Serve (tests, embedding)."""

from __future__ import annotations

from typing import Any, Self


class AsyncConstructed:
    """For deployment classes with an ``async def __init__`` (which Ray Serve awaits)."""

    @classmethod
    async def create(cls, *args: Any, **kwargs: Any) -> Self:
        """Construct and await the async constructor, as a Serve replica would."""
        instance = cls.__new__(cls)
        await instance.__init__(*args, **kwargs)  # type: ignore[misc]
        return instance
