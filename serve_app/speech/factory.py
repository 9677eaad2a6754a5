"""The speech engine a replica runs, from :class:`SpeechSettings` (picklable, for Ray)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from serve_app.speech.base import SpeechEngine
from serve_app.speech.settings import TINY_WHISPER, SpeechBackendName, SpeechSettings


@dataclass(frozen=True)
class SpeechEngineFactory:
    """Builds the engine inside the replica (weights never travel through Ray)."""

    settings: SpeechSettings
    #: Where ``tiny-random-whisper`` is built (``<data_dir>/models``).
    data_dir: Path = Path(".data")

    def __call__(self) -> SpeechEngine:
        s = self.settings
        if s.backend is SpeechBackendName.POCKETSPHINX:
            from serve_app.speech.pocketsphinx_engine import PocketsphinxEngine

            return PocketsphinxEngine(Path(s.model) if s.model else None)
        if s.backend is SpeechBackendName.WHISPER:
            from serve_app.speech.whisper_engine import WhisperEngine

            model = s.model
            if model == TINY_WHISPER:
                model = str(ensure_tiny_whisper(self.data_dir / "models" / TINY_WHISPER))
            return WhisperEngine(model, s.device, s.dtype, s.language, s.threads)
        raise ValueError("speech is off: no engine to build")


def ensure_tiny_whisper(out_dir: Path, seed: int = 0) -> Path:
    """``out_dir`` holding the tiny Whisper, built once (atomically renamed into place)."""
    from serve_app.speech.tiny_whisper import MARKER_FILE, build_tiny_whisper

    out_dir = Path(out_dir)
    if (out_dir / MARKER_FILE).exists():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    try:
        build_tiny_whisper(tmp, seed=seed)
        tmp.chmod(0o755)
        try:
            os.replace(tmp, out_dir)
        except OSError:  # another process finished first
            if not (out_dir / MARKER_FILE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
