"""Blob-store commands for ``serve-app``: the S3 bucket's CORS rule for the web page.

The jobs page uploads videos straight to presigned S3 URLs and reads results from
them, so the bucket must allow the page's origin (what users type in the address bar)::

    serve-app s3-cors --origin https://app.example.com

The bucket, endpoint and region come from the service's settings
(``SERVE_APP_JOBS__S3__BUCKET``, ``..._ENDPOINT_URL``, ``..._REGION``), credentials
from the usual AWS environment. The rule replaces the bucket's CORS configuration.
"""

from __future__ import annotations

import argparse
import json

from serve_app.storage.blob import S3BlobStore
from serve_app.storage.bucket_cors import put_bucket_cors


def _cmd_s3_cors(ns: argparse.Namespace) -> int:
    from serve_app.config import Settings

    s3 = Settings().jobs.s3
    if not s3.bucket:
        raise SystemExit("no bucket: set SERVE_APP_JOBS__S3__BUCKET (and the endpoint, region)")
    store = S3BlobStore(s3.bucket, endpoint_url=s3.endpoint_url, region=s3.region)
    try:
        applied = put_bucket_cors(store, ns.origin, ns.max_age)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    print(f"CORS of bucket {s3.bucket!r} is now:")
    print(json.dumps(applied, indent=2))
    return 0


def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``s3-cors``."""
    cors = subparsers.add_parser(
        "s3-cors",
        help="let the web page upload to and read from the S3 bucket (PutBucketCors)",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cors.add_argument(
        "--origin",
        action="append",
        required=True,
        help="the service's web origin, e.g. https://app.example.com (repeatable)",
    )
    cors.add_argument(
        "--max-age", type=int, default=3600, help="seconds browsers cache a preflight"
    )
    cors.set_defaults(func=_cmd_s3_cors)
