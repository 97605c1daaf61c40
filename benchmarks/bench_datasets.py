"""Time to build channel datasets from the realistic sources (Sionna TR 38.901 and Sionna RT).

Usage (from the repository root, in the project's environment with the `rt` extra installed):

    python benchmarks/bench_datasets.py                 # 1000 drops, N=64, K=4, each source
    python benchmarks/bench_datasets.py --drops 200 --sources rt:munich

For each source it runs `beamlearn.datasets.build_dataset` into a temporary folder (a fresh build,
nothing reused) and reports wall-clock seconds, drops per second and the peak resident memory of the
process so far. The issue's target: 1000 ray-traced drops (N=64, K=4) in under 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from beamlearn.datasets import build_dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _common.py, also when not run as a script
from _common import cpu_name  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drops", type=int, default=1000)
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--antennas", type=int, default=64)
    ap.add_argument("--sources", default="rt:munich,3gpp-umi,3gpp-uma,3gpp-rma")
    args = ap.parse_args()
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}"
    )
    print("| source | drops | N | K | seconds | drops/s | peak RSS (GB) |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    with tempfile.TemporaryDirectory() as tmp:
        for src in args.sources.split(","):
            t0 = time.perf_counter()
            build_dataset(
                src, args.users, args.antennas, args.drops, 0, Path(tmp) / "d.blch", progress=False, resume=False
            )
            dt = time.perf_counter() - t0
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
            print(
                f"| {src} | {args.drops} | {args.antennas} | {args.users} | {dt:.1f} | {args.drops / dt:.1f} "
                f"| {rss:.2f} |"
            )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
