#!/usr/bin/env bash
# Install (first run) and serve the embedded CPU profile on http://127.0.0.1:8000.
# Extra arguments go to `serve-app serve` (e.g. --config serve_config.yaml --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# glibc malloc tuning inherited by Ray's proxy and replicas: fewer arenas and earlier
# return of freed chunk buffers keep upload memory flat (see BENCHMARKS.md).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}"
export MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-131072}"
# Speech: the embedded run transcribes audio with pocketsphinx (offline, English, CPU;
# long-video summaries and `audio=transcribe` use it). SERVE_APP_SPEECH__BACKEND=off
# turns it off; docs/speech.md has Whisper on a GPU.
export SERVE_APP_SPEECH__BACKEND="${SERVE_APP_SPEECH__BACKEND:-pocketsphinx}"
exec .venv/bin/serve-app serve "$@"
