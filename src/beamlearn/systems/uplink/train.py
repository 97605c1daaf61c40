"""Training of the uplink model-driven networks and their two-step baselines (spec s4.3-4.4, s5.2-5.5).

``beamlearn train uplink --scenario uplink-s1 --method proposed`` trains one model for one
configuration (scenario, N, K, pilots, SNR), as the paper does. Methods:

* ``proposed``: the hybrid loss (10) ``alpha_H L_H + alpha_P L_P - alpha_R R`` with
  ``alpha_H = alpha_P = 1``, ``alpha_R = 0.001``; ``--loss`` picks the beamformer inside the rate
  term: ``original``, the structure (7) computed exactly through the K x K push-through identity;
  ``original-full``, the same W with the paper's N x N solve (its cost is Table I's original
  formulation); ``zf``, ZF on the learned channel (24) (the Power-Net is then trained by L_P alone,
  spec s4.7); ``reduced``, the reduced-dimension form (22)-(23). The four give one model class, which
  always outputs the structure (7);
* ``supervised`` (``alpha_R = 0``) and ``unsupervised`` (``alpha_H = alpha_P = 0``, ``alpha_R = 1``):
  the Fig. 2 ablations;
* ``learned-channel``: the CSI-Net alone on L_H (the two-step baseline's first step; ZF at inference);
* ``learned-channel-bf``: the same first step, then (second stage, CSI-Net frozen) a beamforming
  network trained on ``-R`` computed with the *learned* channel (spec s5.2 DEFAULT).

Loss details: ``L_H`` is the mean squared error over the real entries of the downlink channel in the
network's scaled units (``H_D / output_scale``; spec (8) on unit-variance channels), ``L_P`` the
mean squared error of the fractions ``p/P``, ``q/P`` (spec (9) DEFAULT), ``R`` the mean sum rate
(bit/s/Hz) of the beamformer built from the learned channel and evaluated on the **true** downlink
channel (spec s4.3 DEFAULT ``rate_channel="true"``; option ``learned``).

Data (spec s3): pairs from the scenario's paired UL/DL source with seeds ``500000 + seed``
(training) and ``600000 + seed`` (validation), drawn in complex128; the uplink information the
transmitter sees (``H_U`` or the pilot statistic with fresh noise per sample); WMMSE power labels
``p/P``, ``q/P`` by the duality procedure of spec s3.7 (:func:`beamlearn.precoding.wmmse_power_labels`).
Generated data can be kept in ``--data-cache`` and reused by the other methods of the same
configuration. The best epoch is chosen on the validation sum rate (epoch 0: the untrained network).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from ..._dtypes import resolve_dtype
from ..._validation import check_int, check_one_of, check_real
from ...io import atomic_torch_save
from ...learned import Stage, TrainConfig, TrainingTask, option
from ...metrics.rates import sum_rate
from ...observation import ObservationSpec
from ...precoding import wmmse_power_labels, zf_precoder
from ...scenarios import PRESETS, Scenario, get_scenario
from .model import ARCHS, LearnedChannelBF, UplinkMDL, rms

__all__ = [
    "UplinkConfig",
    "UplinkTask",
    "METHODS",
    "LOSSES",
    "scenario_for",
    "make_pairs",
    "observe",
    "make_data",
    "mean_rate",
]

METHODS = ("proposed", "supervised", "unsupervised", "learned-channel", "learned-channel-bf")
LOSSES = ("original", "original-full", "zf", "reduced")
# the structure (7) in the rate term: "original" computes it exactly by the K x K push-through identity,
# "original-full" with the paper's N x N solve (the cost Table I calls the original formulation)
_FORMS = {"original": "push", "original-full": "full", "reduced": "reduced"}


@dataclass(frozen=True)
class UplinkConfig(TrainConfig):
    """One training run of the uplink system (shared :class:`TrainConfig` fields with this system's defaults)."""

    scenario: str = option("uplink-s1", "Uplink scenario preset (uplink-s0, uplink-s1, uplink-s2, ...).")
    num_users: int | None = option(None, "Users K (default: the preset's).")
    num_bs_antennas: int | None = option(None, "BS antennas N (default: the preset's).")
    pilots: int | None = option(None, "Uplink pilot symbols L (default: the preset's; 0: perfect uplink channel).")
    snr_db: float | None = option(None, "P/N0 in dB (default: the preset's single SNR).")
    method: str = option("proposed", "proposed, supervised, unsupervised, learned-channel or learned-channel-bf.")
    loss: str = option(
        "original", "Beamformer in the rate term: original (7), original-full (7 by N x N solves), zf (24), reduced."
    )
    alpha_h: float | None = option(None, "Weight of the channel MSE (default: 1; 0 for unsupervised).")
    alpha_p: float | None = option(None, "Weight of the power MSE (default: 1; 0 for unsupervised).")
    alpha_r: float | None = option(None, "Weight of the sum rate (default: 0.001; 0 supervised; 1 unsupervised).")
    rate_channel: str = option("true", "Channel of the training rate: true (default) or learned (literal paper).")
    csi_per_user: bool | None = option(
        None, "One CSI-Net shared by the users' columns (spec s4.2 note; K x the data); default: on for uplink-s2*."
    )
    arch: str | None = option(
        None, "Network widths: small (S0/S1: 4 x 4KN, FC Power-Net) or massive (S2: 3 x 2NK, CNN)."
    )
    label_iterations: int = option(200, "WMMSE iterations of the power labels (best of MRT and RZF starts).")
    data_cache: str | None = option(None, "Folder to keep and reuse the generated data (with labels).")
    epochs: int = option(40, "Training epochs (paper: 200).")
    batch_size: int = option(100, "Samples per step (paper: 100).")
    train_channels: int = option(20000, "Training samples (paper: 10^5, 10^6 small-scale).")
    val_channels: int = option(1000, "Validation samples (best epoch).")

    train_seed_offset: ClassVar[int] = 500_000
    val_seed_offset: ClassVar[int] = 600_000

    def __post_init__(self):
        super().__post_init__()
        check_one_of("scenario", self.scenario, tuple(n for n in PRESETS if n.startswith("uplink-")))
        if self.num_users is not None:
            check_int("num_users", self.num_users, 1, 64)
        if self.num_bs_antennas is not None:
            check_int("num_bs_antennas", self.num_bs_antennas, 1, 1024)
        if self.pilots is not None:
            check_int("pilots", self.pilots, 0, 1024)
        if self.snr_db is not None:
            object.__setattr__(self, "snr_db", check_real("snr_db", self.snr_db))
        check_one_of("method", self.method, METHODS)
        check_one_of("loss", self.loss, LOSSES)
        check_one_of("rate_channel", self.rate_channel, ("true", "learned"))
        if self.arch is not None:
            check_one_of("arch", self.arch, ARCHS)
        if self.dataset is not None:
            raise ValueError(
                "dataset: the uplink system trains on its scenario's paired UL/DL source (a dataset file holds one "
                "channel per drop, not the pair); use --data-cache to keep generated data"
            )
        for name in ("alpha_h", "alpha_p", "alpha_r"):
            v = getattr(self, name)
            if v is not None and not check_real(name, v) >= 0:
                raise ValueError(f"{name} must be >= 0, got {v!r}")
        check_int("label_iterations", self.label_iterations, 1, 100_000)
        if self.method == "learned-channel-bf" and self.epochs < 2:
            raise ValueError("method learned-channel-bf trains in two stages: epochs must be >= 2")
        scenario_for(self)  # validates the sizes

    @property
    def per_user(self) -> bool:
        """Whether the CSI-Net is shared by the users' columns (default: for the massive-MIMO S2 presets)."""
        return self.scenario.startswith("uplink-s2") if self.csi_per_user is None else bool(self.csi_per_user)

    def weights(self) -> tuple[float, float, float]:
        """``(alpha_H, alpha_P, alpha_R)`` of the run (spec s4.3, s5.5)."""
        default = {"supervised": (1.0, 1.0, 0.0), "unsupervised": (0.0, 0.0, 1.0)}.get(self.method, (1.0, 1.0, 1e-3))
        given = (self.alpha_h, self.alpha_p, self.alpha_r)
        return tuple(float(d if g is None else g) for g, d in zip(given, default, strict=True))


def scenario_for(config: UplinkConfig) -> Scenario:
    """The scenario of a run: the preset with the configuration's N, K, pilots and SNR."""
    sc = get_scenario(config.scenario)
    changes, tags = {}, []
    if config.num_users is not None and config.num_users != sc.num_users:
        changes["num_users"] = config.num_users
        tags.append(f"K={config.num_users}")
    if config.num_bs_antennas is not None and config.num_bs_antennas != sc.num_bs_antennas:
        changes["num_bs_antennas"] = config.num_bs_antennas
        tags.append(f"N={config.num_bs_antennas}")
    if config.pilots is not None and config.pilots != (sc.observation.pilot_length or 0):
        changes["observation"] = ObservationSpec("uplink", mapping="paired", pilot_length=config.pilots or None)
        tags.append(f"L={config.pilots}")
    if config.snr_db is not None and tuple(sc.snr_db) != (config.snr_db,):
        changes["snr_db"] = (config.snr_db,)
        tags.append(f"{config.snr_db:g}dB")
    if not changes:
        return sc
    return sc.replace(name=f"{sc.name}[{','.join(tags)}]", **changes)


def make_pairs(sc: Scenario, samples: int, seed: int, *, labels: bool, label_iterations: int = 200) -> dict:
    """The scenario's UL/DL pairs and (with ``labels``) their WMMSE power labels, complex128 on the CPU:
    ``h`` downlink ``[B, K, N]``, ``u_true`` uplink ``H_U`` ``[B, N, K]``, ``pf``, ``qf`` ``[B, K]``
    (zeros without labels). Independent of the observation (pilots are applied by :func:`observe`)."""
    h, u_true = sc.channel_model().pair(samples, seed=seed, dtype=torch.complex128)
    power, noise = sc.power_and_noise(sc.snr_db[0])
    k = sc.num_users
    pf = qf = torch.zeros(samples, k, dtype=torch.float64)
    if labels:
        lab = []
        for start in range(0, samples, 2000):  # bounded memory
            out = wmmse_power_labels(h[start : start + 2000], power, noise, iterations=label_iterations)
            lab.append((out.p_frac, out.q_frac))
        pf = torch.cat([a for a, _ in lab]).to(torch.float64)
        qf = torch.cat([b for _, b in lab]).to(torch.float64)
    return {"h": h, "u_true": u_true, "pf": pf, "qf": qf}


def observe(sc: Scenario, pairs: dict, seed: int) -> dict:
    """``pairs`` with what the transmitter sees under the scenario's observation: ``u`` the uplink
    information ``[B, N, K]`` (``H_U``, or the pilot statistic with noise drawn per sample from
    ``seed``) and ``y`` the received pilots ``[B, N, L]`` (empty without pilots)."""
    h = pairs["h"]
    power, noise = sc.power_and_noise(sc.snr_db[0])
    g = torch.Generator().manual_seed(seed + 7)
    obs = sc.observation.observe(h, power, noise, g, uplink=pairs["u_true"])
    y = obs.received if obs.received is not None else torch.zeros(h.shape[0], 0, 0, dtype=h.dtype)
    return dict(pairs) | {"u": obs.uplink, "y": y}


def make_data(sc: Scenario, samples: int, seed: int, *, labels: bool, label_iterations: int = 200) -> dict:
    """Samples of scenario ``sc`` (complex128, CPU): :func:`make_pairs` and :func:`observe` together."""
    return observe(sc, make_pairs(sc, samples, seed, labels=labels, label_iterations=label_iterations), seed)


def _pairs_key(sc: Scenario, samples: int, seed: int, labels: bool, label_iterations: int) -> str:
    summary = {k: v for k, v in sc.summary().items() if k not in ("name", "observation", "source")}
    desc = {"scenario": summary, "samples": samples, "seed": seed, "labels": labels, "format": 2}
    if labels:
        desc["label_iterations"] = label_iterations
    return hashlib.sha256(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load(path: Path):
    try:
        return torch.load(path, weights_only=True) if path.is_file() else None
    except Exception:  # noqa: BLE001 - a damaged cache file is regenerated
        return None


def _cached_data(config: UplinkConfig, sc: Scenario, samples: int, seed: int, labels: bool) -> dict:
    """:func:`make_data`, with the pairs and labels kept in ``config.data_cache`` (keyed by the channel
    source, sizes, SNR, samples and seed, not by the observation: every pilot length reuses them)."""
    it = config.label_iterations
    if config.data_cache is None:
        return make_data(sc, samples, seed, labels=labels, label_iterations=it)
    folder = Path(config.data_cache)
    pairs = _load(folder / f"pairs-{_pairs_key(sc, samples, seed, True, it)}.pt")  # labelled data serve all
    if pairs is None and not labels:
        pairs = _load(folder / f"pairs-{_pairs_key(sc, samples, seed, False, it)}.pt")
    if pairs is None:
        pairs = make_pairs(sc, samples, seed, labels=labels, label_iterations=it)
        atomic_torch_save(pairs, folder / f"pairs-{_pairs_key(sc, samples, seed, labels, it)}.pt")
    return observe(sc, pairs, seed)


@torch.no_grad()
def mean_rate(model, h: torch.Tensor, u: torch.Tensor, y: torch.Tensor, sc: Scenario, batch_size: int = 1000) -> float:
    """Mean sum rate (bit/s/Hz) of ``model`` on the true downlink channels ``h``, from the uplink
    information ``u`` (and received pilots ``y``) as the transmitter sees them."""
    from ...observation import Observation

    power, noise = sc.power_and_noise(sc.snr_db[0])
    was = model.training
    model.eval()
    tot = 0.0
    x = _pilot_matrix(sc, h)
    for s in range(0, h.shape[0], batch_size):
        hb = h[s : s + batch_size]
        rx = y[s : s + batch_size] if y.numel() else None
        obs = Observation("uplink", hb, uplink=u[s : s + batch_size], received=rx, pilots=x if rx is not None else None)
        w = model(obs, power, noise).precoder
        tot += float(sum_rate(hb, w.to(hb.dtype), noise).sum())
    model.train(was)
    return tot / h.shape[0]


def _pilot_matrix(sc: Scenario, h: torch.Tensor):
    """The scenario's uplink pilots ``[K, L]`` (``None`` without pilots)."""
    power, _ = sc.power_and_noise(sc.snr_db[0])
    return sc.observation.uplink_pilots(sc.num_users, power, dtype=h.dtype, device=h.device)


class UplinkTask(TrainingTask):
    """:class:`UplinkConfig` -> model, data, loss and validation for the shared trainer."""

    metric = "rate"

    def __init__(self, config: UplinkConfig):
        super().__init__(config)
        self.scenario = scenario_for(config)
        self._scales = None
        self._stats = None

    @property
    def label(self) -> str:
        return f"uplink {self.config.method} {self.scenario.name}"

    def _labels_needed(self) -> bool:
        return self.config.method in ("proposed", "supervised", "unsupervised") and self.config.weights()[1] > 0

    def data(self):
        c, sc = self.config, self.scenario
        dtype = resolve_dtype(c.dtype)
        need = self._labels_needed()
        tr = _cached_data(c, sc, c.train_channels, c.train_seed, need)
        va = _cached_data(c, sc, c.val_channels, c.val_seed, False)
        self._scales = (rms(tr["u"]), rms(tr["h"]))
        ut = tr["u_true"]
        mean = ut.mean(0)
        d = ut - mean
        self._stats = (mean, (d.mH @ d).mean(0) / sc.num_bs_antennas)
        rdt = torch.float64 if dtype == torch.complex128 else torch.float32
        dev = c.device

        def cast(t):
            return t.to(device=dev, dtype=dtype if t.is_complex() else rdt)

        train = tuple(cast(tr[k]) for k in ("h", "u", "y", "pf", "qf"))
        val = tuple(va[k].to(dev) for k in ("h", "u", "y"))
        return train, val

    def build_model(self):
        c, sc = self.config, self.scenario
        arch = c.arch or ("massive" if c.scenario.startswith("uplink-s2") else "small")
        u_scale, h_scale = self._scales or (1.0, 1.0)
        n, k = sc.num_bs_antennas, sc.num_users
        if c.method in ("learned-channel", "learned-channel-bf"):
            lmmse = sc.observation.pilot_length is not None
            model = LearnedChannelBF(
                n,
                k,
                arch=arch,
                beamformer="zf" if c.method == "learned-channel" else "bf",
                input_scale=u_scale,
                output_scale=h_scale,
                lmmse=lmmse,
                csi_per_user=c.per_user,
            )
            if lmmse and self._stats is not None:
                model.set_uplink_statistics(*self._stats)
        else:
            model = UplinkMDL(n, k, arch=arch, input_scale=u_scale, output_scale=h_scale, csi_per_user=c.per_user)
        return model.to(torch.float64 if resolve_dtype(c.dtype) == torch.complex128 else torch.float32)

    def stages(self):
        c = self.config
        if c.method != "learned-channel-bf":
            return super().stages()
        first = c.epochs // 2
        return [
            Stage(
                "channel", first, c.learning_rate, parameters=lambda m: m.csi.parameters(), options={"part": "channel"}
            ),
            Stage(
                "bf",
                c.epochs - first,
                c.learning_rate,
                parameters=lambda m: m.bf_net.parameters(),
                options={"part": "bf"},
            ),
        ]

    def metadata(self) -> dict:
        c = self.config
        return {
            "snr_db": float(self.scenario.snr_db[0]),
            "method": c.method,
            "loss": c.loss,
            "weights": list(c.weights()),
        }

    def loss(self, model, batch):
        c, sc = self.config, self.scenario
        h, u, y, pf_lab, qf_lab = batch
        power, noise = sc.power_and_noise(sc.snr_db[0])
        a_h, a_p, a_r = c.weights()
        h_true = h.mH  # paper layout [B, N, K]
        s = model.output_scale
        if isinstance(model, LearnedChannelBF):
            x = u
            if model.lmmse and y.numel():
                x = model.channel_input(_obs(h, u, y, _pilot_matrix(sc, h)), noise)
            h_hat = model.learned_channel(x)
            part = (self.stage.options.get("part") if self.stage is not None else None) or "channel"
            if part == "channel":
                l_h = _mse(h_hat / s, h_true / s)
                with torch.no_grad():
                    rate = sum_rate(h, zf_precoder(h_hat.mH.detach(), power), noise)
                return l_h, rate
            h_hat = h_hat.detach()
            w = model.bf_precoder(h_hat, power)
            # the separate approach treats the learned channel as the truth (spec s5.2 DEFAULT)
            train_rate = sum_rate(h_hat.mH, w, noise)
            with torch.no_grad():
                rate = sum_rate(h, w, noise)
            return -train_rate.mean(), rate
        h_hat, pf, qf = model.heads(u)
        loss = torch.zeros((), dtype=pf.dtype, device=pf.device)
        if a_h > 0:
            loss = loss + a_h * _mse(h_hat / s, h_true / s)
        if a_p > 0:
            loss = loss + a_p * 0.5 * (((pf - pf_lab) ** 2).mean() + ((qf - qf_lab) ** 2).mean())
        rate_h = h if c.rate_channel == "true" else h_hat.mH
        if c.loss == "zf":
            w = zf_precoder(h_hat.mH, power)
        else:
            w = model.beamformer(h_hat, pf, qf, power, noise, form=_FORMS[c.loss])
        rate = sum_rate(rate_h, w, noise)
        if a_r > 0:
            loss = loss - a_r * rate.mean()
        with torch.no_grad():
            true_rate = rate if c.rate_channel == "true" else sum_rate(h, w, noise)
        return loss, true_rate.detach()

    def validate(self, model, data) -> float:
        h, u, y = data[:3]
        return mean_rate(model, h, u, y, self.scenario)


def _obs(h, u, y, x):
    from ...observation import Observation

    return Observation("uplink", h, uplink=u, received=y, pilots=x)


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the real entries of complex tensors (spec (8))."""
    d = a - b
    return 0.5 * (d.real**2 + d.imag**2).mean()
