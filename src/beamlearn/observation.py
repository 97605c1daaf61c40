"""What the transmitter observes: perfect CSI, pilots and an estimator, or the uplink channel.

The observation is part of the scenario (:class:`ObservationSpec`). The experiment runner draws the
true channel, makes the observation from it with :meth:`ObservationSpec.observe`, hands the
observation to the method (``method.observes``, see :mod:`beamlearn.interface`) and scores the
method's beamformers on the true channel.

Kinds:

* ``"perfect"``: the transmitter knows the true downlink channel.
* ``"pilots"``: ``Y = H X + W`` with ``pilot_length`` DFT pilots of total power ``pilot_power`` per
  pilot symbol (``None``: the data power P) and W ~ CN(0, sigma^2) at the evaluation SNR; the channel
  view is the ``"ls"`` or ``"lmmse"`` estimate (:mod:`beamlearn.estimation`). LMMSE uses the
  long-term channel covariance ``E[h^H h]`` (a statistic the transmitter is assumed to have learned
  over a long time scale), which the experiment runner estimates once per experiment from channels
  drawn independently of the test set; it is also handed to methods that consume the whole
  observation. A method that designs its own pilots or receive combiners (JCEHB) calls
  ``observation.sound(pilots, combiner)`` instead, within the same budget of ``pilot_length``
  pilot symbols (:class:`Sounder`).
* ``"uplink"``: the BS sees the uplink channel ``[..., N, K]`` (or ``[..., K, N, Nr]``, one block per user), made from
  the true downlink channel by a named UL/DL mapping (``"reciprocal"``: TDD, ``H_ul = H_dl^T``;
  systems register others with :func:`register_uplink_mapping`), optionally with i.i.d. estimation
  error of variance ``uplink_error_var`` per entry. The channel view is the mapping's downlink
  reading of it (the transpose for ``"reciprocal"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._validation import check_int, check_nonnegative, check_one_of, check_positive
from .channels.base import complex_normal

__all__ = ["ObservationSpec", "Observation", "PERFECT_CSI", "UPLINK_MAPPINGS", "register_uplink_mapping"]

KINDS = ("perfect", "pilots", "uplink")
ESTIMATORS = ("ls", "lmmse")


def _reciprocal_uplink(h: torch.Tensor, generator=None) -> torch.Tensor:
    return h.transpose(-1, -2) if h.dim() >= 2 else h


def _reciprocal_downlink(u: torch.Tensor) -> torch.Tensor:
    return u.transpose(-1, -2)


# name -> (downlink -> uplink, uplink -> downlink view)
UPLINK_MAPPINGS: dict[str, tuple[Callable, Callable]] = {"reciprocal": (_reciprocal_uplink, _reciprocal_downlink)}


def register_uplink_mapping(name: str, to_uplink: Callable, to_downlink_view: Callable) -> None:
    """Add a UL/DL mapping: ``to_uplink(h_dl, generator)`` makes the uplink channel the BS observes (draw
    any randomness, such as a UL/DL mismatch, from ``generator`` for reproducibility) and
    ``to_downlink_view(h_ul)`` is the downlink channel a classical method reads from it."""
    UPLINK_MAPPINGS[name] = (to_uplink, to_downlink_view)


class Sounder:
    """Noisy measurements of the true channel with pilots (and receive combiners) a method designs.

    ``sound(pilots, combiner=None)``: ``pilots`` ``[N, T]`` (or ``[..., N, T]``), optional combiners
    ``[..., K, Nr, M]`` (multi-antenna users) or ``[..., K, 1, M]``; returns ``Y = H X + W`` (combined:
    ``C^H (H X + W)``) with W i.i.d. CN(0, sigma^2) per receive antenna. At most ``budget`` pilot
    symbols in all, over every call: the pilot overhead of the scenario.
    """

    def __init__(self, h: torch.Tensor, noise_var: float, generator, budget: int):
        self._h = h
        self._noise_var = float(noise_var)
        self._generator = generator
        self.budget = budget
        self.used = 0

    def __call__(self, pilots: torch.Tensor, combiner: torch.Tensor | None = None) -> torch.Tensor:
        t = pilots.shape[-1]
        if self.used + t > self.budget:
            raise ValueError(f"pilot budget exceeded: {self.used} + {t} pilot symbols > pilot_length={self.budget}")
        self.used += t
        h = self._h if combiner is None or self._h.dim() >= 4 else self._h.unsqueeze(-2)
        y = h @ pilots
        y = y + complex_normal(y.shape, self._generator, y.device, y.dtype, self._noise_var)
        return y if combiner is None else combiner.mH @ y


@dataclass
class Observation:
    """What the transmitter has. ``channel`` is always set: the channel view ``[..., K, N]`` (or
    ``[..., K, Nr, N]``) that classical methods consume; the other fields depend on the kind."""

    kind: str
    channel: torch.Tensor
    pilots: torch.Tensor | None = None  # X [N, T]
    received: torch.Tensor | None = None  # Y [..., K(, Nr), T]
    covariance: torch.Tensor | None = None  # long-term E[h^H h] of the rows [N, N]
    uplink: torch.Tensor | None = None  # [..., N, K] or [..., K, N, Nr]
    sound: Sounder | None = None  # pilots of the method's own design (kind "pilots")
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ObservationSpec:
    """How the transmitter's observation is made from the true channel (see the module docstring).

    Attributes:
        kind: ``"perfect"``, ``"pilots"`` or ``"uplink"``.
        pilot_length: T, pilot symbols (``"pilots"``; >= N for the LS estimator).
        pilot_power: total power of one pilot symbol (``None``: the data power P of the SNR point).
        estimator: ``"ls"`` or ``"lmmse"``.
        mapping: the UL/DL mapping of ``"uplink"`` (a name in :data:`UPLINK_MAPPINGS`).
        uplink_error_var: variance of the i.i.d. CN error added to the uplink channel (0: exact).
    """

    kind: str = "perfect"
    pilot_length: int | None = None
    pilot_power: float | None = None
    estimator: str = "ls"
    mapping: str = "reciprocal"
    uplink_error_var: float = 0.0

    def __post_init__(self):
        check_one_of("observation kind", self.kind, KINDS)
        check_one_of("estimator", self.estimator, ESTIMATORS)
        if self.kind == "pilots":
            if self.pilot_length is None:
                raise ValueError("observation kind 'pilots' needs pilot_length (an integer >= 1)")
            check_int("pilot_length", self.pilot_length, 1)
        if self.pilot_power is not None:
            check_positive("pilot_power", self.pilot_power)
        check_nonnegative("uplink_error_var", self.uplink_error_var)
        if not isinstance(self.mapping, str) or not self.mapping:
            raise ValueError(f"mapping must be the name of a UL/DL mapping, got {self.mapping!r}")
        # the mapping name is checked when observing: a system may register it after this spec is made

    @classmethod
    def parse(cls, text: str) -> ObservationSpec:
        """The command-line spelling: ``perfect``, ``pilots:T[:ls|lmmse[:POWER]]`` or
        ``uplink[:MAPPING[:ERROR_VAR]]``, e.g. ``pilots:64:lmmse`` or ``uplink:reciprocal:0.01``."""
        parts = [p.strip() for p in str(text).split(":")]
        kind = parts[0]
        check_one_of("observation kind", kind, KINDS)
        try:
            if kind == "perfect" and len(parts) == 1:
                return cls()
            if kind == "pilots" and 2 <= len(parts) <= 4:
                return cls(
                    "pilots",
                    pilot_length=int(parts[1]),
                    estimator=parts[2] if len(parts) > 2 else "ls",
                    pilot_power=float(parts[3]) if len(parts) > 3 else None,
                )
            if kind == "uplink" and len(parts) <= 3:
                return cls(
                    "uplink",
                    mapping=parts[1] if len(parts) > 1 else "reciprocal",
                    uplink_error_var=float(parts[2]) if len(parts) > 2 else 0.0,
                )
        except ValueError as e:
            raise ValueError(f"observation {text!r}: {e}") from None
        raise ValueError(
            f"observation must be 'perfect', 'pilots:T[:ls|lmmse[:POWER]]' or "
            f"'uplink[:MAPPING[:ERROR_VAR]]', got {text!r}"
        )

    def summary(self) -> dict:
        if self.kind == "perfect":
            return {"kind": "perfect"}
        if self.kind == "pilots":
            return {
                "kind": "pilots",
                "pilot_length": self.pilot_length,
                "pilot_power": self.pilot_power,
                "estimator": self.estimator,
            }
        return {"kind": "uplink", "mapping": self.mapping, "uplink_error_var": self.uplink_error_var}

    def observe(
        self,
        h: torch.Tensor,
        power: float,
        noise_var: float,
        generator: torch.Generator | None = None,
        *,
        covariance: torch.Tensor | None = None,
    ) -> Observation:
        """The observation of the true channels ``h`` ``[B, K, N]`` or ``[B, K, Nr, N]`` at ``(P, sigma^2)``.

        ``covariance`` is the long-term ``E[h^H h]`` of a row ``[N, N]`` for the LMMSE estimator and for
        methods that consume it (the experiment runner estimates it once, from channels independent of
        the test set); without it the sample covariance of ``h`` stands in (for direct calls only: it
        leaks the test channels to the estimator)."""
        if self.kind == "perfect":
            return Observation("perfect", h)
        if self.kind == "uplink":
            if self.mapping not in UPLINK_MAPPINGS:
                raise ValueError(f"mapping must be one of {', '.join(UPLINK_MAPPINGS)}, got {self.mapping!r}")
            to_ul, to_dl = UPLINK_MAPPINGS[self.mapping]
            u = to_ul(h, generator)
            if self.uplink_error_var > 0:
                u = u + complex_normal(u.shape, generator, u.device, u.dtype, self.uplink_error_var)
            return Observation("uplink", to_dl(u), uplink=u)
        from .estimation import lmmse_estimate, ls_estimate, orthogonal_pilots

        n = h.shape[-1]
        x = orthogonal_pilots(n, self.pilot_length, self.pilot_power or float(power), dtype=h.dtype, device=h.device)
        y = h @ x + complex_normal((*h.shape[:-1], x.shape[-1]), generator, h.device, h.dtype, float(noise_var))
        if covariance is None:
            rows = h.reshape(-1, n)
            cov = rows.mH @ rows / rows.shape[0]  # E[h^H h] of the rows h (row vectors)
        else:
            cov = covariance
        if self.estimator == "ls":
            est = ls_estimate(y, x)
        else:
            est = lmmse_estimate(y, x, noise_var, cov)
        sounder = Sounder(h, noise_var, generator, self.pilot_length)
        return Observation("pilots", est, pilots=x, received=y, covariance=cov, sound=sounder)


PERFECT_CSI = ObservationSpec()
