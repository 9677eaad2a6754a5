"""The bucket's CORS rule and the store's origin, against moto's S3 server on loopback.

A browser preflight is an ``OPTIONS`` to the presigned URL itself (query included)
with ``Origin`` and ``Access-Control-Request-Method``; moto answers it from the
bucket's CORS configuration. Limits of moto (S3 does better): it checks the origin but
not the requested method or headers against the rule, and echoes the rule's lists.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from serve_app.storage.blob import LocalBlobStore, S3BlobStore
from serve_app.storage.bucket_cors import cors_configuration, put_bucket_cors, url_origin
from tests.support.s3_server import s3_client

PAGE = "http://127.0.0.1:8000"


def preflight(url: str, origin: str, method: str = "PUT") -> httpx.Response:
    return httpx.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,accept",
        },
    )


def test_the_rule_names_origins_methods_and_headers() -> None:
    [rule] = cors_configuration(["https://app.example.com/", "http://127.0.0.1:8000"], 60)[
        "CORSRules"
    ]
    assert rule["AllowedOrigins"] == ["https://app.example.com", "http://127.0.0.1:8000"]
    assert rule["AllowedMethods"] == ["PUT", "GET", "HEAD"]
    assert rule["AllowedHeaders"] == ["*"] and rule["MaxAgeSeconds"] == 60


@pytest.mark.parametrize(
    "origin", ["app.example.com", "ftp://app.example.com", "https://app.example.com/ui", ""]
)
def test_what_is_not_an_origin_is_refused(origin: str) -> None:
    with pytest.raises(ValueError):
        cors_configuration([origin])


def test_preflights_follow_the_buckets_rule(s3_endpoint: str, s3_bucket: str) -> None:
    store = S3BlobStore(s3_bucket, prefix="serve/", client=s3_client(s3_endpoint))
    url = store.presigned_url("uploads/1-a.mp4", "PUT", 300)
    assert url is not None
    before = preflight(url, PAGE)
    assert "access-control-allow-origin" not in before.headers, "no rule, no CORS"

    put_bucket_cors(store, [PAGE])
    rules = s3_client(s3_endpoint).get_bucket_cors(Bucket=s3_bucket)["CORSRules"]
    assert rules[0]["AllowedOrigins"] == [PAGE]
    allowed = preflight(url, PAGE)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == PAGE
    assert "PUT" in allowed.headers["access-control-allow-methods"]
    other = preflight(url, "http://elsewhere.test")
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    # The PUT itself (and a GET of the object) name the origin too: the browser reads them.
    put = httpx.put(url, content=b"video", headers={"Origin": PAGE})
    assert put.status_code == 200 and put.headers["access-control-allow-origin"] == PAGE
    get_url = store.presigned_url("uploads/1-a.mp4", "GET", 300)
    assert get_url is not None
    got = httpx.get(get_url, headers={"Origin": PAGE})
    assert got.content == b"video" and got.headers["access-control-allow-origin"] == PAGE


def test_the_origin_of_presigned_urls(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert url_origin(S3BlobStore(s3_bucket, client=s3_client(s3_endpoint))) == s3_endpoint
    assert url_origin(LocalBlobStore(tmp_path)) is None  # the service's own URLs
    # No credentials anywhere: no URL, so no origin (and no exception for the page).
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches credentials found earlier
    bare = S3BlobStore(s3_bucket, endpoint_url=s3_endpoint, region="us-east-1")
    assert url_origin(bare) is None
