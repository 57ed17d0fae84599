#!/usr/bin/env bash
# Set up this checkout: .venv -> a virtualenv cached outside the repo, keyed on the dependency spec,
# so clones (and CI) with the same dependencies reuse one install. Safe to re-run; a half-built venv
# from an interrupted run is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
cache=${VISUAL_SEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/visual-search}
key=$("$python" - <<'PY'
import hashlib, json, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
spec = [sys.version_info[:2], project["dependencies"], project.get("optional-dependencies", {})]
print(hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16])
PY
)
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "setup: creating $venv (first time for this dependency spec: a few minutes)"
  rm -rf "$venv"
  mkdir -p "$cache"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e ".[dev]" 2> >(grep -v "^WARNING: Location" >&2)
  touch "$venv/.complete"
fi
# Point the editable install at this checkout (the cached venv may have been built from another clone).
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e . 2> >(grep -v "^WARNING: Location" >&2)
ln -sfn "$venv" .venv
echo "setup: .venv -> $venv"
