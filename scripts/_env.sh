# Sourced by scripts/test and scripts/demo: puts hatch and the Python
# interpreters on PATH, installing what is missing. Nothing else is needed.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$REPO_ROOT/.tools"

# pyenv keeps several interpreters; hatch finds them as python3.X on PATH.
PYENV_ROOT="${PYENV_ROOT:-${HOME:-/root}/.pyenv}"
if [ -d "$PYENV_ROOT/versions" ]; then
  for minor in 3.13 3.12 3.10 3.11; do
    latest="$(ls -d "$PYENV_ROOT/versions/$minor".* 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$latest" ] && [ -x "$latest/bin/python$minor" ]; then
      PATH="$latest/bin:$PATH"
    fi
  done
  export PATH
fi

if [ ! -x "$TOOLS/bin/hatch" ]; then
  echo "Installing hatch into $TOOLS ..."
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check "hatch>=1.16" "uv>=0.5"
fi
export PATH="$TOOLS/bin:$PATH"
