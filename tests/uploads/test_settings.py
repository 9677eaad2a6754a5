from pathlib import Path

import pytest
from pydantic import ValidationError

from serve_app.config import Settings
from serve_app.uploads.settings import UploadSettings


def test_env_configures_uploads_and_roots(monkeypatch, tmp_path):
    monkeypatch.setenv("SERVE_APP_UPLOADS__MAX_CHUNK_BYTES", "1048576")
    monkeypatch.setenv("SERVE_APP_UPLOADS__TTL_S", "60")
    monkeypatch.setenv("SERVE_APP_ALLOWED_MEDIA_ROOTS", f'["{tmp_path}"]')
    settings = Settings(data_dir=tmp_path)
    assert settings.uploads.max_chunk_bytes == 1024 * 1024
    assert settings.uploads.ttl_s == 60
    assert settings.allowed_media_roots == [Path(tmp_path)]
    assert settings.uploads_dir == tmp_path / "uploads"


def test_defaults_keep_the_feature_off_and_chunks_small():
    settings = Settings()
    assert settings.allowed_media_roots == []
    assert settings.uploads.max_chunk_bytes < settings.max_request_bytes


def test_bad_values_are_refused():
    with pytest.raises(ValidationError):
        UploadSettings(max_chunks=0)
    with pytest.raises(ValidationError):
        UploadSettings(unknown=1)  # type: ignore[call-arg]
