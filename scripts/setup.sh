#!/usr/bin/env bash
# Create .venv (if needed) and install serve_app with the given extras, idempotently.
#   scripts/setup.sh            runtime only
#   scripts/setup.sh dev        + test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "serve_app: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
stamp=".venv/.serve_app-installed-${extras:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "serve_app: installing dependencies (first run downloads PyTorch, Ray, transformers)"
  spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  .venv/bin/python -m pip install --disable-pip-version-check -q -e "$spec"
  touch "$stamp"
fi
