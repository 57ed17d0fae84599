#!/usr/bin/env bash
# Set up this checkout. The dependencies live in a virtualenv cached outside the repo, keyed on the
# dependency spec, so clones (and CI) with the same dependencies share one install. Each checkout gets
# its own small .venv that sees those dependencies plus its own src/ (never another clone's code).
# Safe to re-run; a half-built cache from an interrupted run is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
cache=${VISUAL_SEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/visual-search}
quiet_pip() { grep -v "^WARNING: Location" >&2 || true; }

# The dependency spec (requirement strings) and its key.
"$python" - > .deps.txt <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["dev"]))
PY
key=$( (cat .deps.txt; "$python" -c 'import sys; print(sys.version_info[:2])') | sha256sum | cut -c1-16)
deps="$cache/deps-$key"
if [ ! -f "$deps/.complete" ]; then
  echo "setup: installing dependencies into $deps (first time for this spec: a few minutes)"
  rm -rf "$deps"
  mkdir -p "$cache"
  "$python" -m venv "$deps"
  "$deps/bin/python" -m pip install --quiet --upgrade pip 2> >(quiet_pip)
  "$deps/bin/python" -m pip install --quiet -r .deps.txt 2> >(quiet_pip)
  touch "$deps/.complete"
fi
rm -f .deps.txt

# The browser test drives Debian's chromium (Playwright never downloads a browser here).
if [ ! -x /usr/bin/chromium ]; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  if command -v apt-get > /dev/null && { [ -z "$sudo" ] || sudo -n true 2> /dev/null; }; then
    echo "setup: installing Debian chromium (apt) for the browser test"
    $sudo apt-get update -qq > /dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium > /dev/null
  else
    echo "setup: no /usr/bin/chromium and no apt-get as root to install it: the browser test will be skipped"
  fi
fi

# This checkout's own environment: the cached dependencies + this checkout's src/.
rm -rf .venv
"$deps/bin/python" -m venv --without-pip .venv
site_of() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
site=$(site_of .venv/bin/python)
echo "import site; site.addsitedir('$(site_of "$deps/bin/python")')" > "$site/visual_search_deps.pth"
echo "$PWD/src" > "$site/visual_search.pth"
echo "setup: .venv ready (dependencies from $deps)"
