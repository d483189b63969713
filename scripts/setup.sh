#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs the project with its test extras, at the versions of
# constraints.txt. Idempotent: when .venv was already installed from the same pyproject.toml and
# constraints.txt (the hash in .venv/.vtp-installed), it does nothing. VTP_SETUP_FORCE=1 reinstalls.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
STAMP=.venv/.vtp-installed

if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
  rm -rf .venv
  "$PYTHON" -m venv .venv
fi
wanted="$(.venv/bin/python - <<'EOF'
import hashlib, pathlib, sys
digest = hashlib.sha256(sys.version.encode())
for name in ("pyproject.toml", "constraints.txt"):
    digest.update(pathlib.Path(name).read_bytes())
print(digest.hexdigest())
EOF
)"
if [ -z "${VTP_SETUP_FORCE:-}" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
  exit 0
fi
rm -f "$STAMP"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e '.[test]'
echo "$wanted" > "$STAMP"
