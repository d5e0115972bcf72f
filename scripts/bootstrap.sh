#!/usr/bin/env bash
# Creates .venv with uv and installs the workspace pinned by constraints.txt.
# Idempotent: a second run only re-installs when an input changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv" >&2
  "$PYTHON" -m pip install --quiet --user uv || "$PYTHON" -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi

if [ ! -x .venv/bin/python ]; then
  uv venv --quiet --python "$PYTHON" .venv
fi

stamp=.venv/.claimflow-installed
inputs=(constraints.txt requirements/dev.in services/*/pyproject.toml tools/*/pyproject.toml)
if [ ! -f "$stamp" ] || [ -n "$(find "${inputs[@]}" -newer "$stamp" 2>/dev/null)" ]; then
  uv pip install --quiet --python .venv/bin/python -r requirements/dev.in -c constraints.txt
  touch "$stamp"
fi

# checkov (used by the chart tests) lives in its own virtualenv under the cache.
checkov_venv=.cache/checkov
checkov_stamp=$checkov_venv/.claimflow-installed
if [ ! -f "$checkov_stamp" ] || [ requirements/checkov.txt -nt "$checkov_stamp" ]; then
  [ -x "$checkov_venv/bin/python" ] || uv venv --quiet --python "$PYTHON" "$checkov_venv"
  uv pip install --quiet --python "$checkov_venv/bin/python" -r requirements/checkov.txt
  touch "$checkov_stamp"
fi
