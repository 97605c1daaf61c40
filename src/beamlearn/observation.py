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

  A *paired* channel source (:class:`~beamlearn.channels.uplink_pairs.UplinkPairChannel`, whose
  downlink is a function of the uplink that no mapping can invert) draws both channels; the caller
  passes its uplink to :meth:`ObservationSpec.observe` (``uplink=``), and the mapping ``"paired"``
  reads it in the paper's layout ``H_U`` ``[..., N, K]`` (column k: user k's uplink channel), whose
  downlink view is ``H_U^H`` (the BS takes ``h_D = h_U``).

  With ``pilot_length = L`` the users send ``L`` uplink pilot symbols instead
  (``Y = H_U X + N``, ``X`` ``[K, L]`` the DFT pilots with entries of modulus ``sqrt(P_pilot)``,
  ``N`` i.i.d. CN(0, sigma^2)), and the BS sees the least-squares statistic
  ``Y X^H / (L P_pilot)`` ``[..., N, K]`` (``received`` and ``pilots`` hold ``Y`` and ``X``); with
  ``L < K`` the pilots are not orthogonal (pilot contamination). Single-antenna users only.
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


def _paired_uplink(h: torch.Tensor, generator=None) -> torch.Tensor:
    raise ValueError(
        "observation 'uplink:paired' needs the uplink channels of a paired UL/DL channel source (a scenario "
        "such as uplink-s1 draws them with its channel model's pair()); pass them as observe(..., uplink=...)"
    )


def _paired_downlink(u: torch.Tensor) -> torch.Tensor:
    return u.mH


# name -> (downlink -> uplink, uplink -> downlink view)
UPLINK_MAPPINGS: dict[str, tuple[Callable, Callable]] = {
    "reciprocal": (_reciprocal_uplink, _reciprocal_downlink),
    "paired": (_paired_uplink, _paired_downlink),
}


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
        pilot_length: T, pilot symbols (``"pilots"``; >= N for the LS estimator); for ``"uplink"``,
            the uplink pilot symbols L of every user (``None``: the BS knows the uplink channel).
        pilot_power: total power of one pilot symbol (``None``: the data power P of the SNR point); for
            ``"uplink"``, each user's power per pilot symbol.
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
        if self.kind == "pilots" and self.pilot_length is None:
            raise ValueError("observation kind 'pilots' needs pilot_length (an integer >= 1)")
        if self.kind == "perfect" and self.pilot_length is not None:
            raise ValueError("observation kind 'perfect' takes no pilot_length")
        if self.pilot_length is not None:
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
        ``uplink[:MAPPING[:ERROR_VAR[:PILOTS[:POWER]]]]``, e.g. ``pilots:64:lmmse``,
        ``uplink:reciprocal:0.01`` or ``uplink:paired:0:6`` (6 uplink pilot symbols)."""
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
            if kind == "uplink" and len(parts) <= 5:
                return cls(
                    "uplink",
                    mapping=parts[1] if len(parts) > 1 else "reciprocal",
                    uplink_error_var=float(parts[2]) if len(parts) > 2 else 0.0,
                    pilot_length=int(parts[3]) if len(parts) > 3 else None,
                    pilot_power=float(parts[4]) if len(parts) > 4 else None,
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
        d = {"kind": "uplink", "mapping": self.mapping, "uplink_error_var": self.uplink_error_var}
        if self.pilot_length is not None:
            d |= {"pilot_length": self.pilot_length, "pilot_power": self.pilot_power}
        return d

    def observe(
        self,
        h: torch.Tensor,
        power: float,
        noise_var: float,
        generator: torch.Generator | None = None,
        *,
        covariance: torch.Tensor | None = None,
        uplink: torch.Tensor | None = None,
    ) -> Observation:
        """The observation of the true channels ``h`` ``[B, K, N]`` or ``[B, K, Nr, N]`` at ``(P, sigma^2)``.

        ``covariance`` is the long-term ``E[h^H h]`` of a row ``[N, N]`` for the LMMSE estimator and for
        methods that consume it (the experiment runner estimates it once, from channels independent of
        the test set); without it the sample covariance of ``h`` stands in (for direct calls only: it
        leaks the test channels to the estimator).

        ``uplink`` is the uplink channel of each of ``h`` drawn by a paired UL/DL channel source
        (``[B, N, K]``, kind ``"uplink"`` only); without it the mapping makes it from ``h``."""
        if self.kind == "perfect":
            return Observation("perfect", h)
        if self.kind == "uplink":
            return self._observe_uplink(h, power, noise_var, generator, uplink)
        if uplink is not None:
            raise ValueError(f"observation kind {self.kind!r} takes no uplink channels")
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

    def uplink_pilots(self, num_users: int, power, *, dtype=torch.complex64, device=None) -> torch.Tensor | None:
        """The users' uplink pilots ``X`` ``[K, L]`` (DFT, entries of modulus ``sqrt(P_pilot)``, with
        ``P_pilot = pilot_power`` or the data power ``power``), or ``None`` without uplink pilots."""
        if self.kind != "uplink" or self.pilot_length is None:
            return None
        from .estimation import orthogonal_pilots

        p_pilot = float(self.pilot_power or power)
        return orthogonal_pilots(num_users, self.pilot_length, num_users * p_pilot, dtype=dtype, device=device)

    def _observe_uplink(self, h, power, noise_var, generator, uplink) -> Observation:
        if self.mapping not in UPLINK_MAPPINGS:
            raise ValueError(f"mapping must be one of {', '.join(UPLINK_MAPPINGS)}, got {self.mapping!r}")
        to_ul, to_dl = UPLINK_MAPPINGS[self.mapping]
        if uplink is None:
            u = to_ul(h, generator)
        else:
            if uplink.shape[0] != h.shape[0] or not uplink.is_complex():
                raise ValueError(
                    f"uplink must be complex channels [B, N, K] for the {h.shape[0]} downlink channels, got "
                    f"{tuple(uplink.shape)} {uplink.dtype}"
                )
            u = uplink.to(device=h.device, dtype=h.dtype)
        if self.uplink_error_var > 0:
            u = u + complex_normal(u.shape, generator, u.device, u.dtype, self.uplink_error_var)
        if self.pilot_length is None:
            return Observation("uplink", to_dl(u), uplink=u)
        if h.dim() != u.dim() or h.shape[-2:] != u.shape[-1:-3:-1]:
            raise ValueError(
                f"uplink pilots need single-antenna users (uplink [B, N, K]); got uplink {tuple(u.shape)} for "
                f"downlink {tuple(h.shape)}"
            )
        from .estimation import uplink_ls_statistic

        p_pilot = float(self.pilot_power or power)
        x = self.uplink_pilots(u.shape[-1], power, dtype=u.dtype, device=u.device)
        y = u @ x
        y = y + complex_normal(y.shape, generator, y.device, y.dtype, float(noise_var))
        stat = uplink_ls_statistic(y, x, p_pilot)
        return Observation("uplink", to_dl(stat), pilots=x, received=y, uplink=stat)


PERFECT_CSI = ObservationSpec()
