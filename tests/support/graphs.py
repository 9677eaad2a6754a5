"""Shared pieces of the tests that deploy the real Ray Serve graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serve_app.accounts.context import open_accounts
from serve_app.accounts.users import create_user
from serve_app.config import Settings
from serve_app.engines.profile import ModelProfile

#: Cheap password hashing for test databases.
FAST_ACCOUNTS: dict[str, int] = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 8,
    "argon2_parallelism": 1,
}


def tiny_profile(
    model_dir: Path, name: str = "tiny-qwen2.5-vl", max_new_tokens: int = 16
) -> ModelProfile:
    """The tiny Qwen2.5-VL on the transformers backend, one CPU thread."""
    return ModelProfile(
        name=name,
        backend="transformers",
        model=str(model_dir),
        device="cpu",
        torch_threads=1,
        max_new_tokens=max_new_tokens,
    )


def create_api_token(
    settings: dict[str, Any], username: str, *, credits: int = 0, admin: bool = False
) -> tuple[str, int]:
    """A user in the graph's database (``settings`` as passed to the app) and a token."""
    accounts = open_accounts(Settings(**settings))
    try:
        user = create_user(
            accounts.database,
            accounts.passwords,
            username,
            f"password-{username}",
            is_admin=admin,
            credits=credits,
        )
        return accounts.tokens.create(user.id, "graph").token, user.id
    finally:
        accounts.close()
