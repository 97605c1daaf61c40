#!/usr/bin/env bash
# Run the whole test suite: the linter and formatter check (ruff, configured in pyproject.toml), then
# pytest (the default suite excludes tests marked `slow`; pass -m slow for those).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh test,rt
ruff check .
ruff format --check .
python -m pytest "$@"
