"""Small file-system primitives that stay correct with several processes at once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"


def _temp_beside(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return tmp


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; readers never see it partial.

    Returns:
        False when ``path`` already existed (it is left untouched).
    """
    tmp = _temp_beside(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def replace_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` by atomic rename (readers see the old or the new file)."""
    tmp = _temp_beside(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any, *, exclusive: bool = False) -> bool:
    """:func:`replace_atomic` (or :func:`create_exclusive`) of ``value`` as JSON."""
    data = json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode()
    if exclusive:
        return create_exclusive(path, data)
    replace_atomic(path, data)
    return True


def read_json(path: Path) -> Any:
    """The JSON value in ``path`` (FileNotFoundError when absent)."""
    return json.loads(path.read_bytes())


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def mtime(path: Path) -> float | None:
    """Modification time of ``path``, or None when it does not exist."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def remove_tree(path: Path, trash: Path) -> bool:
    """Remove a directory by renaming it into ``trash`` first (atomic), then deleting.

    A process still writing into the old path fails with FileNotFoundError instead
    of leaving files in a half-deleted directory. Returns False when ``path`` was
    already gone.
    """
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / uuid.uuid4().hex
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return False
    shutil.rmtree(target, ignore_errors=True)
    return True


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
