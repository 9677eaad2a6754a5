"""Upload a file in chunks to serve_app's POST /api/analyze and print the analysis JSON.

Resumable: running the same command again sends only the chunks the server lacks
(the upload id derives from the file's path, size and mtime unless --upload-id is
given). Progress goes to stderr, the analysis JSON to stdout.

Usage:
    .venv/bin/python scripts/upload_client.py VIDEO --url http://127.0.0.1:8000 \
        --token "$SERVE_APP_TOKEN" [--prompt TEXT] [--interval N] [--model-path NAME] \
        [--chunk-size 8M] [--upload-id ID] [--retries 6] [--quiet]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import httpx

from scripts.clients.chunked_upload import (
    DEFAULT_CHUNK_BYTES,
    ChunkUploader,
    ProgressBar,
    UploadError,
    UploadOptions,
)

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str) -> int:
    """``8M``, ``512k``, ``1048576`` -> bytes."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = value[-1:] if value[-1:] in _UNITS else ""
    number = float(value[: len(value) - len(unit)])
    size = int(number * _UNITS[unit])
    if size < 1:
        raise argparse.ArgumentTypeError("chunk size must be at least 1 byte")
    return size


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="the image or video to analyse")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service's root URL")
    parser.add_argument(
        "--token", default=os.environ.get("SERVE_APP_TOKEN"), help="API token (or SERVE_APP_TOKEN)"
    )
    parser.add_argument("--prompt")
    parser.add_argument("--interval", type=int)
    parser.add_argument("--model-path")
    parser.add_argument(
        "--chunk-size", type=parse_size, default=DEFAULT_CHUNK_BYTES, help="e.g. 8M (default)"
    )
    parser.add_argument("--upload-id", help="default: derived from the file (resumable)")
    parser.add_argument("--retries", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the analysis")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, object]:
    fields = {
        name: str(value)
        for name, value in (
            ("prompt", args.prompt),
            ("interval", args.interval),
            ("model_path", args.model_path),
        )
        if value is not None
    }
    options = UploadOptions(
        chunk_bytes=args.chunk_size,
        upload_id=args.upload_id,
        fields=fields,
        retries=args.retries,
        final_timeout_s=args.timeout,
    )
    progress = None if args.quiet else ProgressBar(args.path.stat().st_size)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=60) as client:
        result = await ChunkUploader(client, options, progress).upload(args.path)
    if progress is not None:
        progress.note("done")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = asyncio.run(run(args))
    except UploadError as exc:
        print(f"upload failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot read {args.path}: {exc.strerror}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
