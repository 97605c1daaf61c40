"""Pluggable metrics: the per-channel figures of merit that experiments report.

A :class:`Metric` maps the *true* channel, a method's :class:`~beamlearn.interface.Beamformers` and the
operating point to one number per channel ``[B]`` (float64). ``evaluate --metric NAME`` and every
reproduction look metrics up here; :func:`register_metric` adds one of the caller's.

Built in:

* ``sum_rate``: sum rate in bit/s/Hz, per-stream SINR form with the method's combiners (MMSE
  combiners when it returns none); a method's own ``sum_rate`` (capacity bounds) is reported as is.
* ``sum_rate_logdet``: log-det form for multi-stream users (joint detection at each user).
* ``ser`` / ``ser_16qam``: symbol error rate averaged over users and streams, exact given the symbol
  vector and averaged over random symbol vectors (:func:`~beamlearn.metrics.ser_conditional`).
* ``ser_mc`` / ``ser_16qam_mc``: Monte Carlo SER with noise and detection
  (:func:`~beamlearn.metrics.ser_monte_carlo`).

The SER metrics detect as the method says: ``bf.detection`` (``"equalized"`` when ``None``, or
``"sign"``, the MSER paper's sign detection of the raw combiner output for QPSK; for 16-QAM both are
the same) is passed on as the SER functions' ``detection``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .rates import _is_mimo, mmse_combiner, sum_rate
from .ser import ser_conditional, ser_monte_carlo

__all__ = ["Metric", "METRICS", "register_metric", "get_metric"]


@dataclass(frozen=True)
class Metric:
    """A figure of merit.

    Attributes:
        name: the name used on the command line and in CSV columns (``<name>_mean``).
        label: axis label with unit.
        compute: ``compute(h, bf, power, noise_var, generator) -> [B]``; ``h`` is the true channel.
        log_scale: plot on a logarithmic y-axis (error rates).
        higher_is_better: for "best" rows and claims.
        needs_precoder: the metric cannot score a method that returns no precoder (capacity bounds).
    """

    name: str
    label: str
    compute: Callable[..., torch.Tensor]
    log_scale: bool = False
    higher_is_better: bool = True
    needs_precoder: bool = True
    description: str = ""

    def __call__(self, h, bf, power, noise_var, generator=None) -> torch.Tensor:
        if bf.selection is not None and bf.precoder is not None:
            # an antenna selection is a promise that the unselected antennas radiate nothing
            off = (bf.selection == 0).to(bf.precoder.real.dtype)[..., :, None]
            leak = ((bf.precoder.abs() ** 2) * off).sum()
            if bool(leak > 1e-9 * (bf.precoder.abs() ** 2).sum()):
                raise ValueError(f"metric {self.name!r}: the precoder drives antennas that the selection switches off")
        if self.needs_precoder and bf.precoder is None:
            raise ValueError(
                f"metric {self.name!r} needs a precoder; this method returns none "
                f"(it returned {', '.join(bf.present()) or 'nothing'})"
            )
        return self.compute(h, bf, power, noise_var, generator).to(torch.float64)


def _sum_rate(form):
    def compute(h, bf, power, noise_var, generator):
        if bf.sum_rate is not None:
            return bf.sum_rate
        return sum_rate(h, bf.precoder, noise_var, combiner=bf.combiner, form=form)

    return compute


def _ser(modulation, monte_carlo, n):
    def compute(h, bf, power, noise_var, generator):
        combiner = bf.combiner
        if combiner is None and _is_mimo(h, bf.precoder):  # multi-antenna users: MMSE combining
            combiner = mmse_combiner(h, bf.precoder, noise_var)
        kw = {"combiner": combiner, "generator": generator, "detection": bf.detection or "equalized"}
        if monte_carlo:
            per = ser_monte_carlo(h, bf.precoder, noise_var, modulation, num_symbols=n, **kw)
        else:
            per = ser_conditional(h, bf.precoder, noise_var, modulation, num_vectors=n, **kw)
        return per.flatten(-2).mean(-1)

    return compute


METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric, *, replace: bool = False) -> Metric:
    """Add ``metric`` to :data:`METRICS` (a name clash raises unless ``replace``)."""
    if not isinstance(metric, Metric):
        raise TypeError(f"metric must be a Metric, got {type(metric).__name__}")
    if metric.name in METRICS and not replace:
        raise ValueError(f"a metric named {metric.name!r} exists; pass replace=True to override it")
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str | Metric) -> Metric:
    """The metric called ``name`` (a :class:`Metric` is returned as is)."""
    if isinstance(name, Metric):
        return name
    if name not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {name!r}")
    return METRICS[name]


for _m in [
    Metric(
        "sum_rate",
        "sum rate [bit/s/Hz]",
        _sum_rate("sinr"),
        needs_precoder=False,
        description="sum rate, per-stream SINR form (MMSE combiners when the method gives none)",
    ),
    Metric(
        "sum_rate_logdet",
        "sum rate (log-det) [bit/s/Hz]",
        _sum_rate("logdet"),
        needs_precoder=False,
        description="sum rate, log-det form (joint detection of each user's streams)",
    ),
    *(
        Metric(
            f"ser{suffix}{'_mc' if mc else ''}",
            f"SER ({label}{', Monte Carlo' if mc else ''})",
            _ser(modulation, mc, 2000 if mc else 256),
            log_scale=True,
            higher_is_better=False,
            description=f"{label} SER "
            + (
                "by Monte Carlo detection, 2000 symbol vectors per channel"
                if mc
                else "exact given the symbol vector, mean over 256 random vectors per channel"
            ),
        )
        for modulation, suffix, label in (("qpsk", "", "QPSK"), ("16qam", "_16qam", "16-QAM"))
        for mc in (False, True)
    ),
]:
    register_metric(_m)
