"""Client-chosen names, made safe: upload ids, per-user storage keys, file names.

Nothing a client sends is ever used as a path component: upload directories are
named by a hash of the user id and ``upload_id``, and the original file name is
kept only as escaped metadata (for the extension check and for display).
"""

from __future__ import annotations

import hashlib
import re

from serve_app.errors import InvalidRequest

UPLOAD_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_FILENAME_CHARS = 255


def validate_upload_id(upload_id: str) -> str:
    """``upload_id`` if it is 1-64 characters of ``A-Z a-z 0-9 _ -``.

    Raises:
        InvalidRequest: anything else (the value is not echoed).
    """
    if not UPLOAD_ID_PATTERN.fullmatch(upload_id):
        raise InvalidRequest("upload_id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return upload_id


def user_key(user_id: int) -> str:
    """Directory name of one user's uploads."""
    return hashlib.sha256(f"user\0{user_id}".encode()).hexdigest()[:24]


def upload_key(user_id: int, upload_id: str) -> str:
    """Directory name of one upload: the same ``upload_id`` of two users never collides."""
    return hashlib.sha256(f"upload\0{user_id}\0{upload_id}".encode()).hexdigest()[:40]


def escape_filename(name: str) -> str:
    """A printable, unambiguous form of ``name``.

    Backslashes are doubled; control, format (e.g. the right-to-left override
    U+202E) and other non-printable characters become ``\\uXXXX``.
    """
    out = []
    for ch in name:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return "".join(out)


def clean_filename(name: str | None) -> str:
    """The client's file name as escaped metadata ("" when none was given).

    Raises:
        InvalidRequest: longer than :data:`MAX_FILENAME_CHARS` or containing NUL.
    """
    if not name:
        return ""
    if len(name) > MAX_FILENAME_CHARS:
        raise InvalidRequest(f"filename is longer than {MAX_FILENAME_CHARS} characters")
    if "\0" in name:
        raise InvalidRequest("filename contains a NUL character")
    return escape_filename(name)
