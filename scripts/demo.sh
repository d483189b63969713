#!/usr/bin/env bash
# Sets up .venv, then runs one full sync against the bundled Visma and Tableau sandboxes:
# every entity read, dashboard tables built, extracts written to .vtp/extracts, published.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/vtp demo "$@"
