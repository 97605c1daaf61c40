"""Evaluate every applicable method on synthetic, 3GPP UMi and ray-traced (munich) channels, side by side.

Usage (from the repository root, in the project's environment):

    python scripts/compare_channel_sources.py --out results/channel-sources

It builds (or reuses) three datasets of the same size (K = 4 users, N = 32 antennas, 300 drops,
seed 0): the clustered ULA channel of the unfolded-PGA paper, 3GPP TR 38.901 UMi (Sionna, each
user normalised to ||h_k||^2 = N) and Sionna RT munich (shipped in data/, each user normalised the
same way), evaluates all methods on each with `beamlearn evaluate --dataset`, and writes a combined
table (table.md) and plot (sum_rate_by_source.png).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from beamlearn.datasets import build_dataset
from beamlearn.evaluate import evaluate
from beamlearn.experiment import method_style
from beamlearn.io import atomic_savefig, atomic_write_text
from beamlearn.scenarios import get_scenario

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("results/channel-sources"))
    ap.add_argument("--snr-db", default="0,10,20")
    ap.add_argument("--methods", default="all")
    args = ap.parse_args()
    snrs = [float(s) for s in args.snr_db.split(",")]
    out: Path = args.out
    sources = {
        "clustered ULA (unfolded-PGA model)": ("clustered-ula", out / "clustered_k4_n32.blch"),
        "3GPP UMi (Sionna)": ("3gpp-umi", out / "umi_k4_n32.blch"),
        "ray-traced munich (Sionna RT)": ("rt:munich", ROOT / "data" / "rt_munich_k4_n32.blch"),
    }
    results = {}
    for label, (src, path) in sources.items():
        if not path.exists():
            build_dataset(src, 4, 32, 300, 0, path)
        results[label] = evaluate(
            get_scenario("unfolded-pga"),
            args.methods,
            snrs,
            num_channels=300,
            dataset=path,
            out_dir=out / path.stem,
            progress=True,
        )

    methods = list(dict.fromkeys(r["method"] for rows in results.values() for r in rows))
    lines = [
        "| method | " + " | ".join(f"{lab} @ {s:g} dB" for lab in results for s in snrs) + " |",
        "|---|" + "---|" * (len(results) * len(snrs)),
    ]
    for m in methods:
        cells = []
        for rows in results.values():
            val = {float(r["snr_db"]): float(r["sum_rate_mean"]) for r in rows if r["method"] == m}
            cells += [f"{val[s]:.2f}" if s in val else "-" for s in snrs]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    atomic_write_text(out / "table.md", "\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.2), sharey=True)
    for ax, (label, rows) in zip(axes, results.items(), strict=True):
        for i, m in enumerate(methods):
            pts = sorted((float(r["snr_db"]), float(r["sum_rate_mean"])) for r in rows if r["method"] == m)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], **method_style(m, i), label=m)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("SNR [dB]")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("sum rate [bit/s/Hz]")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, out / "sum_rate_by_source.png", dpi=110)
    print((out / "table.md").read_text())


if __name__ == "__main__":
    main()
