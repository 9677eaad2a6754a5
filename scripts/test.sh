#!/usr/bin/env bash
# Install (first run) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
own_tmp=""
if [ -z "${RAY_TMPDIR:-}" ]; then
  own_tmp="$(mktemp -d /tmp/serve_app_ray.XXXXXX)"
  export RAY_TMPDIR="$own_tmp"
fi
status=0
.venv/bin/python -m pytest "$@" || status=$?
[ -n "$own_tmp" ] && rm -rf "$own_tmp"
exit "$status"
