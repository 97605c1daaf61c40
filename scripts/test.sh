#!/usr/bin/env bash
# Run the whole test suite (the default suite excludes tests marked `slow`; pass -m slow for those).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh test,rt
python -m pytest "$@"
