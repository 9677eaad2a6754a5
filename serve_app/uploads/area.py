"""The upload area on disk: layout, tombstones, claims, expiry and cleanup.

Layout under ``root`` (``<data_dir>/uploads``)::

    <user key>/.staging/<uuid>.upload      a chunk while it streams in
    <user key>/<upload key>/manifest.json  upload_id, total_chunks, filename (written once)
    <user key>/<upload key>/chunk-000042   one stored chunk (linked in atomically)
    <user key>/<upload key>/claim          held while one request assembles + analyses
                                           (its mtime is the holder's lease)
    <user key>/<upload key>/result.json    the analysis response and the chunk digests
    <user key>/<upload key>.gone           tombstone of an expired or rejected upload
                                           (the newest ``max_open_uploads`` per user)
    .trash/                                directories being deleted

Keys are hashes (:mod:`serve_app.uploads.names`); nothing the client sends becomes a
path. Every state change is an atomic link, rename or exclusive create, so several
ingress replicas sharing ``data_dir`` agree on one outcome without a lock server.
Ages are measured against the injected ``clock`` (file times are set from it).
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serve_app.errors import Gone
from serve_app.media.limits import MediaLimits
from serve_app.uploads import files
from serve_app.uploads.names import upload_key, user_key
from serve_app.uploads.settings import UploadSettings
from serve_app.uploads.state import Claim, Manifest

MANIFEST = "manifest.json"
RESULT = "result.json"
CLAIM = "claim"
CHUNK_PREFIX = "chunk-"
STAGING = ".staging"
TRASH = ".trash"
GONE_SUFFIX = ".gone"


def chunk_name(number: int) -> str:
    return f"{CHUNK_PREFIX}{number:06d}"


class UploadArea:
    """Where uploads live and how they end: claims, tombstones, expiry.

    Blocking (file I/O): call it from a worker thread.
    """

    def __init__(
        self,
        root: Path,
        settings: UploadSettings,
        limits: MediaLimits,
        clock: Callable[[], float] = time.time,
        claim_lease_s: float | None = None,
    ) -> None:
        """``claim_lease_s``: with a process that calls :meth:`renew_claims` every third
        of it, a claim not renewed for this long is stale (its holder died); without,
        claims go stale after ``settings.finalize_timeout_s``."""
        self.root = root
        self.settings = settings
        self.limits = limits
        self._clock = clock
        self._claim_stale_s = min(settings.finalize_timeout_s, claim_lease_s or math.inf)
        self._held: dict[Path, str] = {}
        self._held_lock = threading.Lock()
        self._next_cleanup = 0.0  # time.monotonic(); the first call is due at once
        self._cleanup_lock = threading.Lock()

    # -- paths -----------------------------------------------------------------------

    def staging_dir(self, user_id: int) -> Path:
        """Where a chunk is spooled before it is linked into its upload."""
        return self.root / user_key(user_id) / STAGING

    def _directory(self, user_id: int, upload_id: str) -> Path:
        return self.root / user_key(user_id) / upload_key(user_id, upload_id)

    @staticmethod
    def _marker(directory: Path) -> Path:
        return directory.with_name(directory.name + GONE_SUFFIX)

    def _manifest(self, directory: Path, upload_id: str) -> Manifest | None:
        """The live upload's manifest; None if there is none; Gone if it expired."""
        marker = self._marker(directory)
        marked = files.mtime(marker)
        if marked is not None:
            if self._clock() - marked <= self.settings.ttl_s:
                raise Gone(
                    f"upload {upload_id} {_marker_reason(marker)}; start again with a new upload_id"
                )
            files.unlink_quietly(marker)
        if self._expire_if_due(directory):
            if files.mtime(marker) is not None:
                raise Gone(f"upload {upload_id} expired; start again with a new upload_id")
            return None
        try:
            return Manifest.from_json(files.read_json(directory / MANIFEST))
        except FileNotFoundError:
            return None

    # -- claims ----------------------------------------------------------------------

    def claim(self, user_id: int, upload_id: str) -> Claim | None:
        """The exclusive right to finish a complete upload, or None if someone has it.

        A stale claim (not renewed for the claim lease: its holder died) is taken over.
        None also when the upload is already done.
        """
        directory = self._directory(user_id, upload_id)
        try:
            manifest = Manifest.from_json(files.read_json(directory / MANIFEST))
        except FileNotFoundError:
            raise Gone(f"upload {upload_id} was removed") from None
        path = directory / CLAIM
        token = uuid.uuid4().hex
        if not files.create_exclusive(path, token.encode()):
            if self._claim_is_live(path):
                return None
            stale = directory / f"{files.TMP_PREFIX}stale-{token}"
            try:
                os.rename(path, stale)  # only one taker wins the rename
            except FileNotFoundError:
                return None
            files.unlink_quietly(stale)
            if not files.create_exclusive(path, token.encode()):
                return None
        now = self._clock()
        os.utime(path, (now, now))  # ages are measured against the clock
        claim = Claim(directory=directory, manifest=manifest, token=token)
        with self._held_lock:
            self._held[path] = token
        if read_result(directory) is not None:
            self.release(claim)
            return None
        return claim

    def _claim_is_live(self, path: Path) -> bool:
        claimed = files.mtime(path)
        return claimed is not None and self._clock() - claimed <= self._claim_stale_s

    def renew_claims(self) -> int:
        """Renew the leases of the claims this process holds (touch them); how many."""
        with self._held_lock:
            held = dict(self._held)
        now = self._clock()
        renewed = 0
        for path, token in held.items():
            try:
                if path.read_bytes().decode() == token:  # still ours (not taken over)
                    os.utime(path, (now, now))
                    renewed += 1
            except FileNotFoundError:
                pass
        return renewed

    def release(self, claim: Claim) -> None:
        """Give the claim back (the analysis failed; a re-sent chunk may retry it)."""
        path = claim.directory / CLAIM
        with self._held_lock:
            self._held.pop(path, None)
        try:
            if path.read_bytes().decode() == claim.token:
                path.unlink()
        except FileNotFoundError:
            pass

    def discard(self, claim: Claim, reason: str) -> None:
        """Remove an upload that can never succeed; later chunks get 410."""
        with self._held_lock:
            self._held.pop(claim.directory / CLAIM, None)
        self._discard(claim.directory, "was rejected: " + reason)

    def _discard(self, directory: Path, reason: str) -> None:
        marker, now = self._marker(directory), self._clock()
        directory.parent.mkdir(parents=True, exist_ok=True)
        files.write_json(marker, {"reason": reason, "at": now})
        os.utime(marker, (now, now))  # ages are measured against the clock
        files.remove_tree(directory, self.root / TRASH)
        self._prune_markers(directory.parent, keep=marker)

    def _prune_markers(self, user_dir: Path, keep: Path) -> None:
        """Keep at most ``max_open_uploads`` tombstones per user (``keep`` and the
        newest others): rejected uploads free their open-upload slot, so without this
        a user could leave one file per rejection. A pruned upload's later chunks start
        a new upload (counted again) instead of getting 410."""
        others = [(files.mtime(m), m) for m in user_dir.glob("*" + GONE_SUFFIX) if m != keep]
        others.sort(key=lambda entry: entry[0] or 0.0, reverse=True)
        for _, old in others[self.settings.max_open_uploads - 1 :]:
            files.unlink_quietly(old)

    # -- expiry ----------------------------------------------------------------------

    def _expire_if_due(self, directory: Path) -> bool:
        """Remove ``directory`` if its TTL has passed; True when it was removed."""
        now = self._clock()
        finished = files.mtime(directory / RESULT)
        if finished is not None:
            if now - finished <= self.settings.ttl_s:
                return False
            return files.remove_tree(directory, self.root / TRASH)
        last = files.mtime(directory)
        if last is None or now - last <= self.settings.ttl_s:
            return False
        if self._claim_is_live(directory / CLAIM):
            return False
        self._discard(directory, "expired")
        return True

    def cleanup_due(self) -> bool:
        """True once per ``cleanup_interval_s`` (and on first use), for one caller."""
        with self._cleanup_lock:
            now = time.monotonic()
            if now < self._next_cleanup:
                return False
            self._next_cleanup = now + self.settings.cleanup_interval_s
            return True

    def cleanup(self) -> int:
        """Remove expired uploads, old tombstones and stray staging files.

        Safe to run in several processes at once. Returns how many uploads expired.
        """
        expired = 0
        now = self._clock()
        ttl = self.settings.ttl_s
        if not self.root.is_dir():
            return 0
        for user_dir in self.root.iterdir():
            if user_dir.name.startswith(".") or not user_dir.is_dir():
                continue
            for entry in list(user_dir.iterdir()):
                changed = files.mtime(entry)
                if changed is None:
                    continue
                if entry.name == STAGING:
                    for stray in entry.iterdir():
                        if now - (files.mtime(stray) or now) > ttl:
                            files.unlink_quietly(stray)
                elif entry.name.endswith(GONE_SUFFIX):
                    if now - changed > ttl:
                        files.unlink_quietly(entry)
                elif entry.is_dir() and self._expire_if_due(entry):
                    expired += 1
        trash = self.root / TRASH
        if trash.is_dir():
            for leftover in trash.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)
        return expired


def read_result(directory: Path) -> dict[str, Any] | None:
    try:
        value = files.read_json(directory / RESULT)
    except FileNotFoundError:
        return None
    return value if isinstance(value, dict) else None


def _marker_reason(marker: Path) -> str:
    """What happened to a removed upload ("expired", "was rejected: ...")."""
    try:
        value = files.read_json(marker)
    except (FileNotFoundError, ValueError):
        return "was removed"
    return str(value.get("reason", "was removed")) if isinstance(value, dict) else "was removed"
