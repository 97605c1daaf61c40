#!/usr/bin/env bash
# The main job: compare every method on the default scenario (unfolded-pga: N=32, K=4, 10-path ULA
# channels), print the sum-rate-vs-SNR table and write results/demo/{results.csv,sum_rate_vs_snr.png}.
# Extra arguments are passed to `beamlearn evaluate` (e.g. --device cuda, --channels 10000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh ""  # (an explicit argument: otherwise it would see this script's arguments)
beamlearn evaluate --scenario unfolded-pga --methods all --snr-db 0,5,10,15,20 \
  --channels 500 --seed 0 --out results/demo "$@"
