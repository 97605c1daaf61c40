"""Training-step time of the proposed network under the three losses (spec s4.6-4.8, Table I).

Table I of the paper compares the training time of the original loss (the structure (7), an N x N
inverse per sample), the reduced-dimension loss ((22)-(23), a K x K eigendecomposition) and the ZF
loss ((24), a K x K inverse). What differs between them is the cost of one optimiser step, so it is
measured per step (forward, backward and Adam update on a batch of the paper's size 100) and scaled
to an epoch; the data and the network are the same for the three losses.
"""

from __future__ import annotations

import time

import torch

from ..._dtypes import resolve_dtype
from ..._validation import check_int, check_one_of
from .train import UplinkConfig, UplinkTask

__all__ = ["loss_step_seconds", "TIMED_LOSSES"]

TIMED_LOSSES = ("original", "reduced", "zf")
# Table I's original formulation is the N x N solve of (7)
_TRAIN_LOSS = {"original": "original-full", "reduced": "reduced", "zf": "zf"}


def loss_step_seconds(
    num_bs_antennas: int,
    num_users: int,
    loss: str,
    *,
    batch_size: int = 100,
    steps: int = 20,
    warmup: int = 3,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "complex64",
    seed: int = 0,
) -> float:
    """Median seconds of one training step (forward, the hybrid loss of :class:`UplinkTask`, backward,
    Adam) of the proposed network (massive-MIMO widths, joint CSI-Net) with ``loss`` in
    ``("original", "reduced", "zf")`` on S2 channels at the preset's 10 dB.

    Example:
        >>> s = loss_step_seconds(8, 2, "zf", steps=2, warmup=1)
        >>> s > 0
        True
    """
    n = check_int("num_bs_antennas", num_bs_antennas, 1)
    k = check_int("num_users", num_users, 1, n)
    check_one_of("loss", loss, TIMED_LOSSES)
    check_int("batch_size", batch_size, 1)
    check_int("steps", steps, 1)
    check_int("warmup", warmup, 0)
    dtype = resolve_dtype(dtype)
    device = torch.device(device)
    torch.manual_seed(seed)
    config = UplinkConfig(
        scenario="uplink-s2",
        num_users=k,
        num_bs_antennas=n,
        loss=_TRAIN_LOSS[loss],
        csi_per_user=False,
        train_channels=batch_size,
        batch_size=batch_size,
        dtype=str(dtype).removeprefix("torch."),
    )
    task = UplinkTask(config)
    h, u = task.scenario.channel_model().pair(batch_size, seed=seed, dtype=dtype)
    h, u = h.to(device), u.to(device)
    scale = float(u.abs().pow(2).mean().sqrt())
    task._scales = (scale, scale)
    model = task.build_model().to(device)
    rdtype = next(model.parameters()).dtype
    labels = torch.full((batch_size, k), 1.0 / k, device=device, dtype=rdtype)
    batch = (h, u, torch.zeros(batch_size, 0, 0, dtype=dtype, device=device), labels, labels)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        value, _ = task.loss(model, batch)
        opt.zero_grad()
        value.backward()
        opt.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return float(torch.tensor(times).median())
