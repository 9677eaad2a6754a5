#!/usr/bin/env bash
# Install (first run) and serve the embedded CPU profile on http://127.0.0.1:8000.
# Extra arguments go to `serve-app serve` (e.g. --config serve_config.yaml --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/serve-app serve "$@"
