"""Value objects of chunked uploads: the manifest, the status a client sees, claims."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from serve_app.storage.spool import SpooledFile

Phase = Literal["receiving", "analysing", "done"]


@dataclass(frozen=True)
class ChunkRequest:
    """One chunk as the client describes it (``filename`` already escaped)."""

    upload_id: str
    chunk_number: int
    total_chunks: int
    filename: str = ""


@dataclass(frozen=True)
class Manifest:
    """What is fixed when an upload starts; written once, atomically."""

    upload_id: str
    total_chunks: int
    filename: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "upload_id": self.upload_id,
            "total_chunks": self.total_chunks,
            "filename": self.filename,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Manifest:
        return cls(
            upload_id=str(value["upload_id"]),
            total_chunks=int(value["total_chunks"]),
            filename=str(value["filename"]),
            created_at=float(value["created_at"]),
        )


@dataclass(frozen=True)
class UploadState:
    """An upload's progress.

    Attributes:
        received: chunk numbers stored so far, ascending.
        received_bytes: their total size.
        phase: ``receiving`` chunks, ``analysing`` (all chunks in; one request is
            assembling and analysing them) or ``done``.
        expires_at: when it will be removed unless another chunk arrives (epoch s).
        result: the analysis response once ``done``.
    """

    upload_id: str
    total_chunks: int
    filename: str
    received: tuple[int, ...]
    received_bytes: int
    phase: Phase
    expires_at: float
    result: Any = None

    @property
    def complete(self) -> bool:
        """Every chunk has arrived."""
        return len(self.received) == self.total_chunks


@dataclass(frozen=True)
class Receipt:
    """The outcome of storing one chunk.

    Attributes:
        state: the upload after this chunk.
        replay: the stored analysis response when the upload had already been
            analysed and this chunk repeats one of its chunks byte for byte.
    """

    state: UploadState
    replay: Any = None


@dataclass(frozen=True)
class Claim:
    """The right to assemble and analyse one complete upload (one holder at a time)."""

    directory: Path
    manifest: Manifest
    token: str


@dataclass(frozen=True)
class Assembled:
    """The parts of an upload joined into one spooled file."""

    file: SpooledFile
    sha256: str
    chunk_sha256: tuple[str, ...]
