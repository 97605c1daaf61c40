"""Cost of the JCEHB system (system 3): training and inference time of Table V (spec s6, B7 of s8.2).

Measures, in one run and side by side, on the ``jcehb`` scenario (N_t = 64, N_r = 32, N_RF^r = 4, Ns = 4,
L = 16 CEDUN layers, L_h = 5 HBDUN layers, 10 dB) for (N_RF^t, K) in {(16, 4), (32, 4), (16, 2), (16, 6)}
(K = 6 with N_RF^t = 16 overloads the system, K Ns = 24 > 16 streams: allowed here; the library's
:class:`~beamlearn.scenarios.Scenario` refuses it, so the channels, the observation and ``(P, sigma^2)`` of
an overloaded size come from the preset with N_RF^t = K Ns, which they do not depend on, and the networks,
built with the same options as :meth:`~beamlearn.systems.jcehb.train.JCEHBTask.build_model`, and the
conventional methods have the N_RF^t asked for):

1. **Training time** (Table V's "training time"): median seconds per training step (forward, the task's
   loss :meth:`~beamlearn.systems.jcehb.train.JCEHBTask.loss` -- minus the mean sum rate (3) --, backward
   and an Adam step over all parameters; batch 100 channels of the scenario, pilot noise drawn in every
   forward pass) of the DU network :class:`~beamlearn.systems.jcehb.model.JCEHBNet` in stage 1
   (``csi="perfect"``: analog + digital NN on the true equivalent channels) and stage 2 (``csi="pilots"``:
   pilots through CEDUN), with ``inverse_mode="exact"`` (the shipped default) and ``"approx"`` (the
   paper's ``C^+ B + D^-``), and of the black-box network :class:`~beamlearn.systems.jcehb.blackbox.
   BlackBoxJCEHB` in both stages (the stage-2 path is the one Table V compares; stage 1 is timed for the
   budget estimate). The models are built by the task (:meth:`JCEHBTask.build_model`), so they are the
   trained ones' shapes. The variants are timed in ``rounds`` interleaved rounds (the order rotated each
   round; the median over rounds of the median step), so that a change of the machine's load hits them
   alike. Printed beside: the parameter counts, the seconds per epoch at the spec's 5,000 training
   channels (50 steps), and the wall time of the spec's training budget (spec s5: DU 50 + 50 epochs of
   5,000 channels; black box 200 + 200 epochs of 50,000 channels), without validation. The trainer's
   gradient clipping (global norm 10) and the freezing of the phases in stage 2 are not reproduced: the
   Adam step runs over every parameter.
2. **Inference** (Table V's "testing time", B7): wall time of the library call ``method(observation,
   power, noise_var)`` (complex64, ``torch.no_grad()``, eval mode) on a batch of 1000 channels and the
   latency at batch 1 (median over 20 calls), for the joint DU network (exact and approx inverse), the
   black box, RLS-SSCA (:class:`~beamlearn.systems.jcehb.baselines.ConventionalJCEHB`, ``digital="sca"``,
   L_r = 90 RLS pilots, L_s = 70 SCA iterations), RLS-SSCA-16 (L_r = 16) and RLS-ZF (L_r = 90). Each
   timed call gets a fresh :class:`~beamlearn.observation.Observation` made by the scenario's observation
   spec (its sounder has a budget of 90 pilot symbols), made outside the timed region. Untrained weights
   (and random analog phases for the conventional methods) cost what trained ones do.
3. **Ratios** RLS-SSCA / joint DU and RLS-SSCA / black box (batch and batch 1) beside the ratios of the
   complexity orders (34)-(38) of :func:`beamlearn.systems.jcehb.overhead.complexity` (RLS + SSCA against
   CEDUN + HBDUN and against the black box, whose layer widths are those of the built networks).

Usage::

    python benchmarks/bench_jcehb.py [--quick] [--device cuda] [--json FILE] [--threads N]

    python benchmarks/bench_jcehb.py                 # full run (about 5 minutes on 2 shared CPU cores)
    python benchmarks/bench_jcehb.py --quick         # quick check: (16, 4) only, batch 100 (~10 s)
    python benchmarks/bench_jcehb.py --device cuda --json results/bench_jcehb_cuda.json
    python benchmarks/bench_jcehb.py --quick --sizes 16,6 32,4   # the quick settings at other sizes

Threads: one by default (``--threads``; torch ``set_num_threads`` and OMP/OPENBLAS/MKL_NUM_THREADS, set
before numpy and torch load). Results go to stdout (markdown tables) and with ``--json`` to a JSON file.
Speed is never asserted anywhere: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _common.py, also when not run as a script
from _common import THREAD_VARS, _early_threads, _loadavg, _sync, machine_description  # noqa: E402

if __name__ == "__main__":
    _threads = _early_threads(sys.argv[1:]) or "1"  # one thread unless told otherwise, before numpy/torch load
    for _var in THREAD_VARS:
        os.environ[_var] = _threads

import torch  # noqa: E402

from beamlearn.learned import Stage  # noqa: E402
from beamlearn.scenarios import get_scenario  # noqa: E402
from beamlearn.systems.jcehb.baselines import ConventionalJCEHB  # noqa: E402
from beamlearn.systems.jcehb.blackbox import BlackBoxJCEHB  # noqa: E402
from beamlearn.systems.jcehb.model import JCEHBNet  # noqa: E402
from beamlearn.systems.jcehb.overhead import complexity  # noqa: E402
from beamlearn.systems.jcehb.train import JCEHBConfig, JCEHBTask  # noqa: E402

SNR_DB = 10.0
N_T, N_R, N_RF_R, NS = 64, 32, 4, 4
PILOT_LENGTH, HBDUN_LAYERS = 16, 5  # L = CEDUN layers, L_h (spec s5 defaults, JCEHBConfig's)
TRAIN_BATCH = 100
DU_TRAIN_CHANNELS, BB_TRAIN_CHANNELS = 5000, 50000  # spec s5
DU_EPOCHS, BB_EPOCHS = (50, 50), (200, 200)  # (stage 1, stage 2), spec s5
RLS_PILOTS, SCA_ITERATIONS = 90, 70  # the paper's RLS-SSCA reference

# (name, network, inverse_mode, stage csi)
TRAIN_VARIANTS = (
    ("DU exact, stage 1", "du", "exact", "perfect"),
    ("DU exact, stage 2", "du", "exact", "pilots"),
    ("DU approx, stage 1", "du", "approx", "perfect"),
    ("DU approx, stage 2", "du", "approx", "pilots"),
    ("black box, stage 1", "blackbox", "exact", "perfect"),
    ("black box, stage 2", "blackbox", "exact", "pilots"),
)
DU_EXACT, DU_APPROX, BLACK_BOX, RLS_SSCA = (
    "joint DU (exact inverse)",
    "joint DU (approx inverse)",
    "black box",
    "RLS-SSCA",
)

FULL = {
    "sizes": ((16, 4), (32, 4), (16, 2), (16, 6)),
    "steps": 20,
    "warmup": 3,
    "rounds": 3,
    "batch": 1000,
    "repeats": 5,
    "latency_repeats": 20,
    "max_seconds": 30.0,
}
QUICK = {
    "sizes": ((16, 4),),
    "steps": 3,
    "warmup": 1,
    "rounds": 1,
    "batch": 100,
    "repeats": 3,
    "latency_repeats": 5,
    "max_seconds": 5.0,
}


def _rf_admitted(m: int, k: int) -> int:
    """The N_RF^t that :class:`~beamlearn.scenarios.Scenario` admits for ``m`` chains and K users: it refuses
    an overloaded array (``N_RF^t < K Ns``), so the overloaded sizes take ``K Ns``."""
    return max(m, k * NS)


def _scenario(m: int, k: int):
    """The ``jcehb`` preset for ``K = k`` users and :func:`_rf_admitted` chains. Its channel model, its
    observation spec and ``power_and_noise`` do not depend on N_RF^t, so they serve the overloaded sizes too;
    the methods are built with ``m`` chains."""
    return get_scenario("jcehb").replace(num_users=k, num_rf_chains=_rf_admitted(m, k))


def _build_model(task: JCEHBTask, m: int, k: int):
    """``task.build_model()`` with ``m`` BS RF chains: the task's own model where its scenario has ``m``
    chains, else the same constructor call with ``m`` (overloaded sizes, see :func:`_scenario`)."""
    c = task.config
    if task.scenario.num_rf_chains == m:
        return task.build_model()
    sizes = (k, N_T, N_R, m, N_RF_R, NS)
    if c.network == "blackbox":
        return BlackBoxJCEHB(*sizes, pilot_length=c.pilot_length, csi="pilots", seed=c.model_seed)
    return JCEHBNet(
        *sizes,
        pilot_length=c.pilot_length,
        hbdun_layers=c.hbdun_layers,
        inverse_mode=c.inverse_mode,
        affine_mode=c.affine_mode,
        csi="pilots",
        seed=c.model_seed,
    )


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- 1. training step ---------------------------------------------------------------------------------------


def _training_setup(m: int, k: int, device: torch.device) -> tuple[dict, torch.Tensor]:
    """Per variant: (task, model, optimiser); and one batch of the scenario's training channels."""
    setups = {}
    for name, network, inverse, csi in TRAIN_VARIANTS:
        cfg = JCEHBConfig(
            snr_db=SNR_DB, network=network, inverse_mode=inverse, num_users=k, num_rf_chains=_rf_admitted(m, k)
        )
        task = JCEHBTask(cfg)  # its loss reads the noise (independent of N_RF^t) and the model's sizes
        task.stage = Stage(name, 1, cfg.learning_rate, options={"csi": csi})
        model = _build_model(task, m, k).to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
        setups[name] = (task, model, opt)
    cm = _scenario(m, k).channel_model()
    h = cm(TRAIN_BATCH, seed=JCEHBConfig.train_seed_offset, dtype=torch.complex128)
    return setups, h.to(device=device, dtype=torch.complex64)


def _step_seconds(task, model, opt, h, device: torch.device, steps: int, warmup: int) -> float:
    def step():
        value, _ = task.loss(model, h)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_training(cfg: dict, device: torch.device, log=print) -> list[dict]:
    rows = []
    names = [v[0] for v in TRAIN_VARIANTS]
    for m, k in cfg["sizes"]:
        torch.manual_seed(0)  # pilot noise of the training forward passes (global RNG, as the trainer)
        setups, h = _training_setup(m, k, device)
        secs = {name: [] for name in names}
        for r in range(cfg["rounds"]):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:  # rotate, so no variant always runs first
                task, model, opt = setups[name]
                s = _step_seconds(task, model, opt, h, device, cfg["steps"], cfg["warmup"])
                secs[name].append(s)
                log(f"N_RF^t={m:2d} K={k} round {r} {name:20s}: {s * 1e3:8.2f} ms/step")
        for name, network, inverse, csi in TRAIN_VARIANTS:
            _, model, _ = setups[name]
            s = statistics.median(secs[name])
            du = network == "du"
            channels = DU_TRAIN_CHANNELS if du else BB_TRAIN_CHANNELS
            epochs = (DU_EPOCHS if du else BB_EPOCHS)[0 if csi == "perfect" else 1]
            rows.append(
                {
                    "N_RF_t": m,
                    "K": k,
                    "variant": name,
                    "network": network,
                    "inverse_mode": inverse if du else None,
                    "csi": csi,
                    "parameters": _count(model),
                    "parameters_analog_cedun_digital": [
                        _count(model.analog),
                        _count(model.cedun),
                        _count(model.digital),
                    ],
                    "seconds_per_step": s,
                    "rounds": secs[name],
                    "seconds_per_epoch_5000": s * DU_TRAIN_CHANNELS / TRAIN_BATCH,
                    "spec_train_channels": channels,
                    "spec_epochs": epochs,
                    "spec_stage_seconds": s * epochs * channels / TRAIN_BATCH,
                }
            )
        del setups
    return rows


def training_budgets(rows: list[dict]) -> list[dict]:
    """Per size and network: the spec's two-stage budget in seconds (the sum of its stages' estimates)."""
    out = []
    keys = [(r["N_RF_t"], r["K"]) for r in rows if r["variant"] == TRAIN_VARIANTS[0][0]]
    for m, k in keys:
        sel = [r for r in rows if (r["N_RF_t"], r["K"]) == (m, k)]
        entry = {"N_RF_t": m, "K": k}
        for label, network, inverse in (("du_exact", "du", "exact"), ("du_approx", "du", "approx")) + (
            ("blackbox", "blackbox", None),
        ):
            stages = [r for r in sel if r["network"] == network and r["inverse_mode"] == inverse]
            entry[label] = sum(r["spec_stage_seconds"] for r in stages)
        entry["blackbox_over_du_exact"] = entry["blackbox"] / entry["du_exact"]
        stage2 = {r["variant"]: r["seconds_per_step"] for r in sel if r["csi"] == "pilots"}
        entry["stage2_step_blackbox_over_du_exact"] = stage2["black box, stage 2"] / stage2["DU exact, stage 2"]
        out.append(entry)
    return out


# -- 2. inference ---------------------------------------------------------------------------------------------


def _methods(m: int, k: int) -> list[tuple[str, torch.nn.Module]]:
    sizes = (k, N_T, N_R, m, N_RF_R, NS)
    du = {"pilot_length": PILOT_LENGTH, "hbdun_layers": HBDUN_LAYERS}
    return [
        (DU_EXACT, JCEHBNet(*sizes, inverse_mode="exact", **du)),
        (DU_APPROX, JCEHBNet(*sizes, inverse_mode="approx", **du)),
        (BLACK_BOX, BlackBoxJCEHB(*sizes, pilot_length=PILOT_LENGTH)),
        (RLS_SSCA, ConventionalJCEHB(*sizes, digital="sca", rls_pilots=RLS_PILOTS, sca_iterations=SCA_ITERATIONS)),
        ("RLS-SSCA-16", ConventionalJCEHB(*sizes, digital="sca", rls_pilots=16, sca_iterations=SCA_ITERATIONS)),
        ("RLS-ZF", ConventionalJCEHB(*sizes, digital="zf", rls_pilots=RLS_PILOTS)),
    ]


def _time_calls(method, sc, h, power, noise, gen, device, repeats: int, budget: float) -> tuple[float, int]:
    """Median wall time of ``method(observation, power, noise)`` on ``h`` over up to ``repeats`` calls (at
    least one; no new call once ``budget`` seconds have been timed), each on a fresh observation made
    outside the timed region, after one warm-up call on the first (up to) 16 channels."""

    def once(hb) -> float:
        with torch.no_grad():
            obs = sc.observation.observe(hb, power, noise, gen)
            _sync(device)
            t0 = time.perf_counter()
            method(obs, power, noise)
            _sync(device)
            return time.perf_counter() - t0

    once(h[:16])
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < budget):
        times.append(once(h))
    return statistics.median(times), len(times)


def bench_inference(cfg: dict, device: torch.device, log=print) -> list[dict]:
    rows = []
    b = cfg["batch"]
    for m, k in cfg["sizes"]:
        sc = _scenario(m, k)
        power, noise = sc.power_and_noise(SNR_DB)
        h = sc.channel_model()(b, seed=2022, dtype=torch.complex128).to(device=device, dtype=torch.complex64)
        gen = torch.Generator(device=device).manual_seed(0)
        torch.manual_seed(0)
        for name, method in _methods(m, k):
            method = method.to(device).eval()
            row: dict = {"method": name, "N_RF_t": m, "K": k, "batch": b, "parameters": _count(method)}
            try:
                secs, calls = _time_calls(method, sc, h, power, noise, gen, device, cfg["repeats"], cfg["max_seconds"])
                lat, lat_calls = _time_calls(
                    method, sc, h[:1], power, noise, gen, device, cfg["latency_repeats"], cfg["max_seconds"]
                )
                row |= {
                    "seconds_per_batch": secs,
                    "calls": calls,
                    "channels_per_s": b / secs,
                    "latency_s": lat,
                    "latency_calls": lat_calls,
                }
                log(
                    f"N_RF^t={m:2d} K={k} {name:26s} {b:5d} ch in {secs:8.4f} s = {b / secs:9.1f} ch/s "
                    f"({calls} calls); batch 1: {lat * 1e3:8.3f} ms ({lat_calls} calls)"
                )
            except Exception as e:  # noqa: BLE001 - one failing method must not lose the others' numbers
                row["error"] = f"{type(e).__name__}: {e}"
                log(f"N_RF^t={m:2d} K={k} {name:26s} ERROR {row['error']}")
            rows.append(row)
    return rows


# -- 3. ratios and complexity orders ----------------------------------------------------------------------


def _orders(m: int, k: int) -> dict:
    ce_widths = (2 * N_RF_R * PILOT_LENGTH, 512, 512, 2 * N_RF_R * m)  # BlackBoxEstimator's layers
    bf_widths = (2 * k * N_RF_R * m, 1024, 1024, 2 * k * (m * NS + N_RF_R * NS))  # BlackBoxDigital's
    c = complexity(
        k,
        NS,
        m,
        N_RF_R,
        rls_iterations=RLS_PILOTS,
        sca_iterations=SCA_ITERATIONS,
        cedun_layers=PILOT_LENGTH,
        hbdun_layers=HBDUN_LAYERS,
        blackbox_ce_widths=ce_widths,
        blackbox_bf_widths=bf_widths,
    )
    conventional, du = c["rls"] + c["ssca"], c["cedun"] + c["hbdun"]
    return c | {
        "rls_ssca": conventional,
        "du": du,
        "rls_ssca_over_du": conventional / du,
        "rls_ssca_over_blackbox": conventional / c["blackbox"],
    }


def ratios(inference: list[dict]) -> list[dict]:
    out = []
    sizes = list(dict.fromkeys((r["N_RF_t"], r["K"]) for r in inference))
    for m, k in sizes:
        by = {r["method"]: r for r in inference if (r["N_RF_t"], r["K"]) == (m, k) and "error" not in r}
        entry: dict = {"N_RF_t": m, "K": k, "orders": _orders(m, k)}
        if RLS_SSCA in by:
            ref = by[RLS_SSCA]
            for label, name in (("du_exact", DU_EXACT), ("du_approx", DU_APPROX), ("blackbox", BLACK_BOX)):
                if name in by:
                    entry[f"rls_ssca_over_{label}_batch"] = ref["seconds_per_batch"] / by[name]["seconds_per_batch"]
                    entry[f"rls_ssca_over_{label}_batch1"] = ref["latency_s"] / by[name]["latency_s"]
        out.append(entry)
    return out


# -- report -----------------------------------------------------------------------------------------------


def _x(entry: dict, key: str) -> str:
    return f"{entry[key]:.1f}x" if key in entry else "—"


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"Training step (forward, loss (3), backward, Adam over all parameters; batch {TRAIN_BATCH}, complex64 "
        f"channels, float32 networks, {s['device']}; median of {s['steps']} steps after {s['warmup']} warm-up, "
        f"median of {s['rounds']} interleaved rounds); epoch = {DU_TRAIN_CHANNELS:,} channels = "
        f"{DU_TRAIN_CHANNELS // TRAIN_BATCH} steps; spec stage = the spec's epochs x channels of that stage "
        f"(DU {DU_EPOCHS[0]} + {DU_EPOCHS[1]} epochs of {DU_TRAIN_CHANNELS:,}, black box {BB_EPOCHS[0]} + "
        f"{BB_EPOCHS[1]} of {BB_TRAIN_CHANNELS:,}; no validation):",
        "",
        "| N_RF^t | K | network, stage | parameters (analog / CEDUN / digital) | ms/step | s/epoch (5,000) | "
        "spec stage (s) |",
        "|--:|--:|:--|--:|--:|--:|--:|",
    ]
    for r in result["training"]:
        a, c, d = r["parameters_analog_cedun_digital"]
        lines.append(
            f"| {r['N_RF_t']} | {r['K']} | {r['variant']} | {r['parameters']:,} ({a:,} / {c:,} / {d:,}) | "
            f"{r['seconds_per_step'] * 1e3:.1f} | {r['seconds_per_epoch_5000']:.2f} | {r['spec_stage_seconds']:,.0f} |"
        )
    lines += [
        "",
        "Spec training budget (both stages, seconds, from the step times above):",
        "",
        "| N_RF^t | K | DU exact | DU approx | black box | black box / DU exact | stage-2 step: black box / DU exact |",
        "|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for e in result["training_budget"]:
        lines.append(
            f"| {e['N_RF_t']} | {e['K']} | {e['du_exact']:,.0f} | {e['du_approx']:,.0f} | {e['blackbox']:,.0f} | "
            f"{e['blackbox_over_du_exact']:.1f}x | {e['stage2_step_blackbox_over_du_exact']:.2f}x |"
        )
    lines += [
        "",
        f"Inference: the library call on a fresh observation (90 pilot symbols available; complex64, no_grad, "
        f"eval, {s['device']}), batch {s['batch']} (median of up to {s['repeats']} calls) and batch 1 (median of "
        f"{s['latency_repeats']} calls):",
        "",
        "| N_RF^t | K | method | s / batch | channels/s | latency at batch 1 (ms) |",
        "|--:|--:|:--|--:|--:|--:|",
    ]
    for r in result["inference"]:
        if "error" in r:
            lines.append(f"| {r['N_RF_t']} | {r['K']} | {r['method']} | error: {r['error']} | | |")
            continue
        lines.append(
            f"| {r['N_RF_t']} | {r['K']} | {r['method']} | {r['seconds_per_batch']:.4g} | "
            f"{r['channels_per_s']:,.0f} | {r['latency_s'] * 1e3:.2f} |"
        )
    lines += [
        "",
        "Ratios of the inference times, RLS-SSCA over the networks (batch; batch 1), beside the ratios of the "
        "complexity orders (34)-(38) (RLS + SSCA over CEDUN + HBDUN, and over the black box):",
        "",
        "| N_RF^t | K | RLS-SSCA / DU exact | RLS-SSCA / DU approx | RLS-SSCA / black box | orders: RLS+SSCA | "
        "CEDUN+HBDUN | black box | (RLS+SSCA) / DU | (RLS+SSCA) / black box |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for e in result["ratios"]:
        o = e["orders"]
        lines.append(
            f"| {e['N_RF_t']} | {e['K']} | {_x(e, 'rls_ssca_over_du_exact_batch')}; "
            f"{_x(e, 'rls_ssca_over_du_exact_batch1')} | {_x(e, 'rls_ssca_over_du_approx_batch')}; "
            f"{_x(e, 'rls_ssca_over_du_approx_batch1')} | {_x(e, 'rls_ssca_over_blackbox_batch')}; "
            f"{_x(e, 'rls_ssca_over_blackbox_batch1')} | {o['rls_ssca']:.3g} | {o['du']:.3g} | {o['blackbox']:.3g} | "
            f"{o['rls_ssca_over_du']:.1f}x | {o['rls_ssca_over_blackbox']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a quick check: (N_RF^t, K) = (16, 4), batch 100 (~10 s)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device (default cpu)")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads and OMP/OPENBLAS/MKL_NUM_THREADS (set before import); default 1",
    )
    ap.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        metavar="M,K",
        help="(N_RF^t, K) pairs to run instead of the mode's, e.g. --sizes 16,4 16,6",
    )
    ap.add_argument("--skip-training", action="store_true", help="skip part 1 (training step)")
    ap.add_argument("--skip-inference", action="store_true", help="skip part 2 (inference)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch.cuda.is_available() is False")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = dict(QUICK if args.quick else FULL)
    if args.sizes:
        try:
            cfg["sizes"] = tuple(tuple(int(x) for x in pair.split(",")) for pair in args.sizes)
        except ValueError:
            ap.error(f"--sizes takes M,K pairs of integers, got {args.sizes}")
        if any(len(pair) != 2 for pair in cfg["sizes"]):
            ap.error(f"--sizes takes M,K pairs of integers, got {args.sizes}")

    machine = machine_description()
    command = " ".join([os.path.basename(sys.executable), *sys.argv])
    print("command: " + command)
    for key, value in machine.items():
        print(f"{key}: {value}")
    settings = {"device": args.device, "quick": args.quick, "threads": args.threads} | {
        key: [list(x) if isinstance(x, tuple) else x for x in v] if isinstance(v, tuple) else v
        for key, v in cfg.items()
    }
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))

    load = {"start": _loadavg()}
    t0 = time.perf_counter()
    print("\n-- 1. training step")
    training = [] if args.skip_training else bench_training(cfg, device)
    load["after_training"] = _loadavg()
    print(f"load average: {load['after_training']}")
    print("\n-- 2. inference")
    inference = [] if args.skip_inference else bench_inference(cfg, device)
    load["end"] = _loadavg()
    total = time.perf_counter() - t0

    result = {
        "command": command,
        "machine": machine,
        "loadavg": load,
        "total_seconds": total,
        "settings": settings,
        "training": training,
        "training_budget": training_budgets(training),
        "inference": inference,
        "ratios": ratios(inference),
    }
    print(f"\ntotal benchmark time {total:.1f} s; load average: {load}\n")
    print(markdown(result))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
