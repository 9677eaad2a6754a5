"""Browsers and the blob store: where its URLs point, and the bucket's CORS rule.

With the S3 store the web page uploads a job's video straight to a presigned URL and
reads the results from another: requests from the service's origin to the bucket's.
The browser lets them through only if the bucket's CORS configuration names the page's
origin (a preflight ``OPTIONS`` comes first for the ``PUT``), and the page's
Content-Security-Policy must list the bucket's origin in ``connect-src``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from serve_app.storage.blob import BlobStore, S3BlobStore

logger = logging.getLogger(__name__)

#: A key under which nothing is stored: only its URL's origin is used.
_PROBE_KEY = "uploads/origin-probe"
#: What the page does with presigned URLs: PUT an upload, GET results, HEAD (clients).
CORS_METHODS = ("PUT", "GET", "HEAD")


def url_origin(store: BlobStore) -> str | None:
    """The origin (``scheme://host[:port]``) of the store's presigned URLs, or None.

    None for stores whose URLs the service signs itself (same origin as the page), and
    when no URL can be made (no credentials yet): the caller then adds nothing.
    """
    try:
        url = store.presigned_url(_PROBE_KEY, "PUT", 60)
    except Exception as exc:  # botocore's NoCredentialsError and the like
        logger.warning("no presigned URL for the blob store's origin: %s", exc)
        return None
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def cors_configuration(origins: Sequence[str], max_age_s: int = 3600) -> dict[str, Any]:
    """The bucket CORS configuration (S3's ``PutBucketCors`` shape) for ``origins``."""
    cleaned = []
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
        cleaned.append(f"{parts.scheme}://{parts.netloc}")
    if not cleaned:
        raise ValueError("name at least one origin")
    return {
        "CORSRules": [
            {
                "ID": "serve-app-web-uploads",
                "AllowedOrigins": cleaned,
                "AllowedMethods": list(CORS_METHODS),
                # The browser adds Content-Type to the PUT, the page Accept to both.
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": int(max_age_s),
            }
        ]
    }


def put_bucket_cors(
    store: S3BlobStore, origins: Sequence[str], max_age_s: int = 3600
) -> dict[str, Any]:
    """Replace the bucket's CORS configuration with the rule for ``origins``; returns it."""
    configuration = cors_configuration(origins, max_age_s)
    store.client.put_bucket_cors(Bucket=store.bucket, CORSConfiguration=configuration)
    return configuration
