#!/usr/bin/env bash
# Sets up .venv and runs the whole test suite on every core (pytest-xdist; VTP_TEST_WORKERS=0 runs
# it in this one process, VTP_TEST_WORKERS=N on N workers). Extra arguments go to pytest.
# `worksteal`: a worker that runs out of tests takes some of another's, so the suite's end is not
# one slow file finishing alone (tests here take from 0.01 s to over a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -n "${VTP_TEST_WORKERS:-auto}" --dist worksteal "$@"
