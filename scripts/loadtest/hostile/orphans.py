"""Files a run may leave behind in the service's data directory, by area.

Orphans (any is a failure once the leases have run out): spooled uploads
(``spool/``), blob-store temporaries (``blobs/.tmp/``) and chunks still streaming
(``uploads/*/.staging/``). Chunked uploads a client left unfinished are not orphans:
they expire with ``uploads.ttl_s`` (counted separately), and so do *stale claims*
(``uploads/*/*/claim``, held while a request assembles and analyses an upload):
one whose holder died is taken over after ``uploads.finalize_timeout_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ORPHAN_AREAS = {
    "spool": ("spool", "*"),
    "blob tmp": ("blobs/.tmp", "*"),
    "upload staging": ("uploads", "*/.staging/*"),
}


@dataclass
class DiskState:
    """Files per orphan area (paths relative to the data directory), open uploads."""

    orphans: dict[str, list[str]] = field(default_factory=dict)
    orphan_bytes: int = 0
    unfinished_uploads: int = 0
    claims: int = 0

    def counts(self) -> dict[str, int]:
        return {area: len(files) for area, files in self.orphans.items()}

    @property
    def orphan_count(self) -> int:
        return sum(len(files) for files in self.orphans.values())


def scan(data_dir: Path) -> DiskState:
    """What lies in ``data_dir`` now (missing areas count as empty)."""
    state = DiskState()
    for area, (folder, pattern) in ORPHAN_AREAS.items():
        root = data_dir / folder
        files = sorted(p for p in root.glob(pattern) if p.is_file()) if root.is_dir() else []
        state.orphans[area] = [str(p.relative_to(data_dir)) for p in files]
        state.orphan_bytes += sum(p.stat().st_size for p in files if p.exists())
    uploads = data_dir / "uploads"
    if uploads.is_dir():
        state.claims = sum(1 for _ in uploads.glob("*/*/claim"))
        state.unfinished_uploads = sum(
            1
            for manifest in uploads.glob("*/*/manifest.json")
            if not (manifest.parent / "result.json").exists()
        )
    return state
