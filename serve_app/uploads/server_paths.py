"""Admin ``file_path``: analyse a file already on the server, safely.

The path is resolved first (symlinks, ``..``) and must then lie under one of
``settings.allowed_media_roots`` (resolved too), outside ``/proc``, ``/sys`` and
``/dev``. The file is then opened by walking from the root's directory handle one
component at a time with ``O_NOFOLLOW``, so a symlink swapped in after the check
cannot lead outside the root; it must be a regular file (checked before and after
opening) within the size limit of its type. It is copied into the spool, so the
model graph never opens the original path itself. Error details never show more of
a path than the caller sent.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from serve_app.errors import (
    InvalidRequest,
    MediaRejected,
    MediaTooLarge,
    NotFound,
    PermissionDenied,
)
from serve_app.media.detect import HEAD_BYTES, detect_media_type
from serve_app.media.limits import MediaLimits
from serve_app.storage.spool import SpooledFile
from serve_app.uploads.names import clean_filename

#: Pseudo file systems that are never media, whatever the allowed roots say.
FORBIDDEN_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))
MAX_PATH_CHARS = 4096
COPY_BYTES = 64 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def resolve_allowed(file_path: str, roots: Sequence[Path]) -> tuple[Path, PurePosixPath]:
    """The allowed root containing ``file_path`` and the resolved path relative to it.

    Raises:
        PermissionDenied: no roots configured, or the resolved path is outside them.
        InvalidRequest: not an absolute path, NUL, too long, or unresolvable.
    """
    if not roots:
        raise PermissionDenied(
            "file_path is disabled on this server (no allowed_media_roots are configured)"
        )
    if not file_path or len(file_path) > MAX_PATH_CHARS or "\0" in file_path:
        raise InvalidRequest(f"file_path must be 1-{MAX_PATH_CHARS} characters without NUL")
    requested = Path(file_path)
    if not requested.is_absolute():
        raise InvalidRequest("file_path must be an absolute path")
    try:
        # Not strict: a missing file outside the roots must look like any other
        # outside path (403), not reveal that it does not exist.
        resolved = requested.resolve(strict=False)
    except (OSError, RuntimeError):
        raise InvalidRequest("file_path cannot be resolved (symlink loop?)") from None
    for root in _resolved_roots(roots):
        if resolved != root and resolved.is_relative_to(root):
            if any(resolved.is_relative_to(tree) for tree in FORBIDDEN_TREES):
                break
            return root, PurePosixPath(resolved.relative_to(root))
    raise PermissionDenied("file_path is outside the allowed media roots")


def _resolved_roots(roots: Sequence[Path]) -> Iterator[Path]:
    for root in roots:
        try:
            yield root.resolve(strict=True)
        except (OSError, RuntimeError):
            continue


@contextlib.contextmanager
def open_under(root: Path, relative: PurePosixPath) -> Iterator[int]:
    """A read-only descriptor of the regular file ``root / relative``.

    Every component is opened relative to its parent with ``O_NOFOLLOW``: nothing
    outside ``root`` can be reached, whatever changes on disk meanwhile.

    Raises:
        NotFound: a component does not exist.
        InvalidRequest: not a regular file (directory, FIFO, device, socket).
        PermissionDenied: a symlink appeared on the way, or the OS refused access.
    """
    fds: list[int] = []
    try:
        _walk(root, relative, fds)
    except BaseException:
        _close_all(fds)
        raise
    try:
        yield fds[-1]
    finally:
        _close_all(fds)


def _walk(root: Path, relative: PurePosixPath, fds: list[int]) -> None:
    """Open ``root`` and each component below it into ``fds`` (the file last)."""
    try:
        fds.append(os.open(root, _DIR_FLAGS))
        for part in relative.parts[:-1]:
            if stat.S_ISLNK(os.stat(part, dir_fd=fds[-1], follow_symlinks=False).st_mode):
                raise PermissionDenied("file_path changed into a symlink while it was being opened")
            fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
        name = relative.parts[-1]
        before = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
        _require_regular(before.st_mode)
        fds.append(os.open(name, _FILE_FLAGS, dir_fd=fds[-1]))
        after = os.fstat(fds[-1])
        _require_regular(after.st_mode)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise PermissionDenied("file_path changed while it was being opened")
    except FileNotFoundError:
        raise NotFound("file_path does not exist") from None
    except NotADirectoryError:
        raise NotFound("file_path does not exist (a parent is not a directory)") from None
    except PermissionError:
        raise PermissionDenied("the server may not read file_path") from None
    except OSError as exc:  # ELOOP: a symlink was swapped in after the check
        raise PermissionDenied(f"file_path cannot be opened safely ({exc.strerror})") from None


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _require_regular(mode: int) -> None:
    if stat.S_ISLNK(mode):
        raise PermissionDenied("file_path changed into a symlink while it was being opened")
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO, device or socket"
        raise InvalidRequest(f"file_path is {kind}, not a regular file")


def copy_server_file(
    file_path: str, roots: Sequence[Path], limits: MediaLimits, spool_dir: Path
) -> SpooledFile:
    """Check ``file_path`` and copy it into ``spool_dir`` (size limit enforced while copying).

    Blocking. The caller removes the copy (:meth:`SpooledFile.discard`).

    Raises:
        PermissionDenied, InvalidRequest, NotFound: see :func:`resolve_allowed`
            and :func:`open_under`.
        UnsupportedMedia: not an accepted image or video type.
        MediaTooLarge: over its type's size limit.
        MediaRejected: empty.
    """
    root, relative = resolve_allowed(file_path, roots)
    filename = clean_filename(relative.name)
    with open_under(root, relative) as fd:
        head = os.pread(fd, HEAD_BYTES, 0)
        if not head:
            raise MediaRejected("the file is empty")
        cap = limits.max_bytes(detect_media_type(head).kind.value)
        if os.fstat(fd).st_size > cap:
            raise MediaTooLarge(f"file_path is larger than the limit of {cap} bytes")
        return _copy(fd, spool_dir, cap, filename)


def _copy(fd: int, spool_dir: Path, cap: int, filename: str) -> SpooledFile:
    spool_dir.mkdir(parents=True, exist_ok=True)
    path = spool_dir / f"{uuid.uuid4().hex}.upload"
    size = 0
    try:
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(out, "wb") as dst:
            while block := os.pread(fd, COPY_BYTES, size):
                size += len(block)
                if size > cap:
                    raise MediaTooLarge(f"file_path is larger than the limit of {cap} bytes")
                dst.write(block)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return SpooledFile(path=path, size=size, filename=filename)
