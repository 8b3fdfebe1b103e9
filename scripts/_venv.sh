# Sourced by the scripts: create or reuse .venv in the repository and install the project into it.
# Usage: . scripts/_venv.sh EXTRA   (EXTRA: a pyproject extra such as "test", or "" for none)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
extra="${1:-}"
spec="$repo"
[ -n "$extra" ] && spec="$repo[$extra]"
stamp="$venv/.installed-${extra:-base}"
if [ ! -f "$stamp" ] || [ "$repo/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec"
  touch "$stamp"
fi
python="$venv/bin/python"
