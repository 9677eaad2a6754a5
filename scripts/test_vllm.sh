#!/usr/bin/env bash
# Build .venv-vllm (first run, scripts/setup_vllm.sh) and run the tests marked vllm in it:
# VLLMEngine, vLLM's OpenAI server and the Serve graph on the CPU build of vLLM.
# Extra arguments go to pytest. A vllm test that skips fails the run (SERVE_APP_REQUIRE_VLLM).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_vllm.sh
own_tmp=""
if [ -z "${RAY_TMPDIR:-}" ]; then
  own_tmp="$(mktemp -d /tmp/serve_app_ray.XXXXXX)"
  export RAY_TMPDIR="$own_tmp"
fi
log="$(mktemp /tmp/serve_app_vllm_tests.XXXXXX)"
status=0
SERVE_APP_REQUIRE_VLLM=1 .venv-vllm/bin/python -m pytest -m vllm "$@" 2>&1 | tee "$log" \
  || status=$?
if [ "$status" = 0 ] && tail -n 5 "$log" | grep -Eq "[0-9]+ skipped"; then
  echo "serve_app: tests marked vllm were skipped; they must run here" >&2
  status=1
fi
rm -f "$log"
[ -n "$own_tmp" ] && rm -rf "$own_tmp"
exit "$status"
