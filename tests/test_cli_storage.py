"""``serve-app s3-cors``: the bucket's CORS rule from the service's settings (moto's S3)."""

from __future__ import annotations

import pytest

from serve_app.cli import main
from tests.support.s3_server import REGION, s3_client


def test_s3_cors_sets_the_rule_for_the_origin(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("SERVE_APP_JOBS__S3__BUCKET", s3_bucket)
    monkeypatch.setenv("SERVE_APP_JOBS__S3__ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("SERVE_APP_JOBS__S3__REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    origins = ["--origin", "https://app.example.com", "--origin", "http://127.0.0.1:8000"]
    assert main(["s3-cors", *origins, "--max-age", "600"]) == 0
    [rule] = s3_client(s3_endpoint).get_bucket_cors(Bucket=s3_bucket)["CORSRules"]
    assert rule["AllowedOrigins"] == ["https://app.example.com", "http://127.0.0.1:8000"]
    assert set(rule["AllowedMethods"]) == {"PUT", "GET", "HEAD"} and rule["MaxAgeSeconds"] == 600
    assert "https://app.example.com" in capsys.readouterr().out


def test_s3_cors_needs_a_bucket_and_real_origins(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVE_APP_JOBS__S3__BUCKET", raising=False)
    with pytest.raises(SystemExit, match="SERVE_APP_JOBS__S3__BUCKET"):
        main(["s3-cors", "--origin", "https://app.example.com"])
    monkeypatch.setenv("SERVE_APP_JOBS__S3__BUCKET", s3_bucket)
    monkeypatch.setenv("SERVE_APP_JOBS__S3__ENDPOINT_URL", s3_endpoint)
    with pytest.raises(SystemExit, match="not an origin"):
        main(["s3-cors", "--origin", "https://app.example.com/ui/jobs"])
