"""Symbol error rate of QPSK and square M-QAM: constellations, detection, analytic and Monte Carlo SER.

Detection model: stream ``(k, l)`` is received as ``z = c_kl^H y_k``. Two detectors are offered by
:func:`ser_conditional` and :func:`ser_monte_carlo` (keyword ``detection``):

* ``"equalized"`` (the default): coherent detection, i.e. the receiver divides by its effective gain
  ``g = c_kl^H H_k x_kl`` and slices to the nearest constellation point (per-dimension decisions);
* ``"sign"``: the MSER paper's detector (spec s2.3, s4.9). For QPSK the per-dimension *sign* of the raw
  combiner output, ``Re s_hat = sign(Re z)`` and ``Im s_hat = sign(Im z)`` (eq. 6, a value ``>= 0`` goes
  to ``+``), with no division by the gain, so a gain whose phase is not a multiple of ``2 pi`` rotates
  the constellation against the decision boundaries. For square M-QAM (M >= 16) the paper phase-aligns
  and slices with gain-scaled thresholds ``c (F_m +- 1)``, ``c = |g|``, after rotating by ``-angle(g)``;
  since ``Re(z e^{-j angle g}) / |g| = Re(z / g)`` that is exactly coherent detection, so ``"sign"``
  equals ``"equalized"`` for M > 4.

Interference from the other streams is *not* treated as Gaussian: the exact QPSK expression averages
over every combination of interfering symbols.

Constellations have unit average energy by default (``E|s|^2 = 1``), consistent with the power
convention of :mod:`beamlearn.metrics.rates`.
"""

from __future__ import annotations

import itertools
import math

import torch

from .._ops import abs2, per_user_product
from .._validation import check_int, check_one_of
from .rates import _check, _is_mimo, _noise, _streams

__all__ = [
    "MODULATIONS",
    "DETECTIONS",
    "qam_constellation",
    "detect_qam",
    "q_function",
    "ser_awgn",
    "ser_qpsk_exact",
    "ser_conditional",
    "ser_monte_carlo",
]

MODULATIONS = {"qpsk": 4, "16qam": 16}
DETECTIONS = ("equalized", "sign")


def _order(modulation: str | int) -> int:
    if isinstance(modulation, str):
        if modulation.lower() not in MODULATIONS:
            raise ValueError(
                f"modulation must be one of {sorted(MODULATIONS)} or a square QAM order, got {modulation!r}"
            )
        return MODULATIONS[modulation.lower()]
    m = check_int("modulation", modulation, 4)
    if int(math.isqrt(m)) ** 2 != m:
        raise ValueError(f"modulation order must be a perfect square (4, 16, 64, ...), got {m}")
    return m


def _detection(detection: str, m: int) -> str:
    """Validate ``detection`` and return the detector actually used for order ``m``: ``"sign"`` only
    differs from ``"equalized"`` for QPSK (for M > 4 the paper's phase-aligned, gain-scaled slicer is
    coherent detection)."""
    check_one_of("detection", detection, DETECTIONS)
    return "sign" if detection == "sign" and m == 4 else "equalized"


def qam_constellation(
    modulation: str | int = "qpsk", *, normalize: bool = True, dtype=torch.complex64, device=None
) -> torch.Tensor:
    """Square QAM points ``[M]``: ``{(2m - sqrt(M) - 1) + j (2n - sqrt(M) - 1)}``, scaled to unit energy
    when ``normalize`` (unnormalised QPSK is ``+-1 +- j``, energy 2; 16-QAM has energy 10)."""
    m = _order(modulation)
    r = math.isqrt(m)
    rdtype = torch.float64 if dtype == torch.complex128 else torch.float32
    lv = 2 * torch.arange(r, dtype=rdtype, device=device) - r + 1
    pts = torch.complex(lv[:, None].expand(r, r), lv[None, :].expand(r, r)).flatten()
    if normalize:
        pts = pts / math.sqrt(2 * (m - 1) / 3)
    return pts.to(dtype)


def detect_qam(z: torch.Tensor, modulation: str | int = "qpsk", *, normalize: bool = True) -> torch.Tensor:
    """Nearest-point detection of equalised samples ``z`` (any shape) on the square QAM grid."""
    m = _order(modulation)
    r = math.isqrt(m)
    scale = math.sqrt(2 * (m - 1) / 3) if normalize else 1.0

    def slice_(v):
        idx = torch.clamp(torch.floor((v * scale + r) / 2), 0, r - 1)  # level index 0..r-1
        return (2 * idx - r + 1) / scale

    return torch.complex(slice_(z.real), slice_(z.imag))


def q_function(x: torch.Tensor) -> torch.Tensor:
    """Gaussian tail ``Q(x) = 0.5 erfc(x / sqrt(2))``."""
    return 0.5 * torch.special.erfc(x / math.sqrt(2))


def ser_awgn(snr, modulation: str | int = "qpsk") -> torch.Tensor:
    """Analytic SER of square M-QAM on an AWGN channel, ``snr = E_s / sigma^2`` (linear).

    ``P_e = 1 - (1 - 2 (1 - 1/sqrt(M)) Q(sqrt(3 snr / (M - 1))))^2``; for QPSK this is
    ``2 Q(sqrt(snr)) - Q(sqrt(snr))^2``.
    """
    m = _order(modulation)
    snr = torch.as_tensor(snr, dtype=torch.float64) if not isinstance(snr, torch.Tensor) else snr
    p = 2 * (1 - 1 / math.sqrt(m)) * q_function(torch.sqrt(3 * snr / (m - 1)))
    return 1 - (1 - p) ** 2


def _effective(h, x, combiner):
    """Effective gains ``G[..., K, Ns, D] = c_kl^H H_k x_ij`` and combiner norms ``[..., K, Ns]``."""
    _check(h, x)
    if not _is_mimo(h, x):
        h = h.unsqueeze(-2)
        if combiner is not None:
            combiner = combiner[..., None, None]
    k, nr = h.shape[-3], h.shape[-2]
    ns = _streams(h, x)
    if combiner is None:
        if ns != 1 or nr != 1:
            raise ValueError("combiner is required for multi-antenna users: pass [..., K, Nr, Ns]")
        combiner = torch.ones(*h.shape[:-1], 1, dtype=h.dtype, device=h.device)
    g = combiner.mH @ per_user_product(h, x)  # [..., K, Ns, K*Ns]
    cn = abs2(combiner).sum(-2)  # [..., K, Ns]
    return g, cn, k, ns


def ser_qpsk_exact(
    h: torch.Tensor, x: torch.Tensor, noise_var, combiner: torch.Tensor | None = None, *, max_streams: int = 9
) -> torch.Tensor:
    """Exact per-stream QPSK SER ``[..., K, Ns]`` with unit-energy symbols and coherent detection.

    Conditions on the desired symbol ``(1 + j)/sqrt(2)`` (QPSK symmetry) and averages
    ``P_R + P_I - P_R P_I`` over all ``4^(D-1)`` combinations of the ``D - 1`` interfering symbols, where
    ``P_R = Q((1/sqrt(2) + Re(i/g)) / s)``, ``i`` the interference, ``g`` the own effective gain and
    ``s = sigma ||c|| / (sqrt(2) |g|)``. ``D = K*Ns`` must not exceed ``max_streams``.
    """
    g, cn, k, ns = _effective(h, x, combiner)
    d = k * ns
    if d > max_streams:
        raise ValueError(
            f"exact QPSK SER enumerates 4^(D-1) symbol combinations; D=K*Ns={d} exceeds max_streams={max_streams}"
        )
    flat = torch.arange(d, device=h.device).view(k, ns)
    own = torch.gather(g, -1, flat[..., None].expand(*g.shape[:-1], 1)).squeeze(-1)  # [..., K, Ns]
    rel = g / own[..., None]  # interference relative to own gain; own entry = 1
    qpsk = qam_constellation("qpsk", dtype=h.dtype, device=h.device)
    combos = torch.tensor(list(itertools.product(range(4), repeat=d)), device=h.device)  # [4^D, D]
    sym = qpsk[combos]  # [C, D]
    # keep combos whose own symbol is (1+j)/sqrt(2) for each stream: select rows per stream below
    target = qpsk[3]  # (+1 +1j)/sqrt(2)
    z = rel @ sym.T  # [..., K, Ns, C]  (noise-free equalised outputs)
    mask = (sym.T == target)[flat]  # [K, Ns, C]: combos where this stream sends the target symbol
    n = _noise(noise_var, cn)
    if n.dim():
        n = n[..., None, None]
    s = torch.sqrt(n * cn / 2) / own.abs()  # [..., K, Ns]
    pr = q_function(z.real / s[..., None])
    pi = q_function(z.imag / s[..., None])
    pe = pr + pi - pr * pi
    return (pe * mask).sum(-1) / mask.sum(-1)


def _prepare(h, x, combiner):
    """``h`` as ``[..., K, Nr, N]``, combiners ``[..., K, Nr, Ns]`` (ones for single-antenna users) and
    the outputs of :func:`_effective`."""
    _check(h, x)
    miso = not _is_mimo(h, x)
    hh = h.unsqueeze(-2) if miso else h
    cc = None if combiner is None else (combiner[..., None, None] if miso else combiner)
    g, cn, k, ns = _effective(hh, x, cc)
    if cc is None:
        cc = torch.ones(*hh.shape[:-1], 1, dtype=h.dtype, device=h.device)
    return hh, cc, g, cn, k, ns


def ser_conditional(
    h: torch.Tensor,
    x: torch.Tensor,
    noise_var,
    modulation: str | int = "qpsk",
    *,
    combiner: torch.Tensor | None = None,
    num_vectors: int = 256,
    generator: torch.Generator | None = None,
    detection: str = "equalized",
) -> torch.Tensor:
    """Per-stream SER ``[..., K, Ns]`` of square M-QAM, exact given the transmitted symbol vector and
    averaged over ``num_vectors`` random symbol vectors per channel (the MSER spec, s9 item 37).

    Args:
        h: channels ``[..., K, N]`` (single-antenna users) or ``[..., K, Nr, N]``.
        x: precoder ``[..., N, K*Ns]`` (unit-energy symbols, so ``||x||_F^2`` is the transmit power).
        noise_var: noise variance sigma^2 per receive antenna, float or real tensor broadcastable to
            the batch ``[...]``.
        modulation: ``"qpsk"``, ``"16qam"`` or a square QAM order.
        combiner: user combiners ``[..., K, Nr, Ns]``; required for multi-antenna users (``None`` means
            ``c = 1`` for single-antenna users).
        num_vectors: random symbol vectors ``V`` per channel.
        generator: draws the symbol vectors (the same seed draws the same vectors for either detector).
        detection: ``"equalized"`` (divide by the own gain, nearest point) or ``"sign"`` (QPSK: sign of
            the raw combiner output, the MSER paper's eq. 6; for M > 4 the same as ``"equalized"``, see
            the module docstring).

    ``"equalized"``: given the symbols ``s`` of all ``D = K*Ns`` streams, stream ``(k, l)``'s equalised
    output is ``z = s_kl + d + n`` with the interference offset ``d = sum_{ij != kl} (g_ij / g_kl) s_ij``
    and Gaussian noise of per-dimension standard deviation ``sigma ||c_kl|| / (sqrt(2) |g_kl|)``; the
    probability of a correct per-dimension decision is ``1 - Q((a + d)/s) - Q((a - d)/s)`` with
    ``a`` half the level spacing (one term only at the outer levels).

    ``"sign"`` (QPSK): with the noise-free raw output ``zbar = sum_ij g_ij s_ij`` (desired signal plus
    interference) and the raw per-dimension noise standard deviation ``sd = sigma ||c_kl|| / sqrt(2)``,
    ``P_R = Q(sign(Re s_kl) Re(zbar) / sd)``, the same for ``P_I``, and ``SER = 1 - (1 - P_R)(1 - P_I)``,
    evaluated as ``P_R + P_I - P_R P_I`` (both detectors) so that SERs far below the dtype's epsilon survive.
    It equals ``"equalized"`` when every own gain ``g_kl`` is real and positive.

    No Gaussian approximation of the interference is made, so the only randomness is the symbol draw:
    unlike Monte Carlo detection the estimate resolves SERs far below ``1 / num_symbols``. For QPSK
    with all ``4^D`` vectors and ``"equalized"`` it equals :func:`ser_qpsk_exact`.

    Example:
        >>> h = torch.randn(8, 2, 4, dtype=torch.complex128)
        >>> from beamlearn.precoding import zf_precoder
        >>> ser_conditional(h, zf_precoder(h, 10.0), 1.0).shape
        torch.Size([8, 2, 1])
    """
    num_vectors = check_int("num_vectors", num_vectors, 1)
    m = _order(modulation)
    detection = _detection(detection, m)
    _, _, g, cn, k, ns = _prepare(h, x, combiner)
    d = k * ns
    pts = qam_constellation(m, dtype=h.dtype, device=h.device)
    batch = g.shape[:-3]
    s = pts[torch.randint(m, (*batch, d, num_vectors), generator=generator, device=h.device)]  # [..., D, V]
    sent = s.reshape(*batch, k, ns, num_vectors)
    n = _noise(noise_var, cn)
    if n.dim():
        n = n[..., None, None]
    sd_raw = torch.sqrt(n * cn / 2)[..., None]  # raw output noise std per dimension [..., K, Ns, 1]

    if detection == "sign":  # QPSK only (see _detection)
        zbar = g @ s.unsqueeze(-3)  # noise-free raw combiner outputs [..., K, Ns, V]
        pr = q_function(torch.sign(sent.real) * zbar.real / sd_raw)
        pi = q_function(torch.sign(sent.imag) * zbar.imag / sd_raw)
        return (pr + pi - pr * pi).mean(-1)  # = 1 - (1 - P_R)(1 - P_I) without cancellation at tiny SER

    flat = torch.arange(d, device=h.device).view(k, ns)
    own = torch.gather(g, -1, flat[..., None].expand(*g.shape[:-1], 1)).squeeze(-1)  # [..., K, Ns]
    dev = (g / own[..., None]) @ s.unsqueeze(-3) - sent  # interference offset [..., K, Ns, V]
    sd = sd_raw / own.abs()[..., None]  # [..., K, Ns, 1]
    half = 1 / math.sqrt(2 * (m - 1) / 3)  # half the spacing of the unit-energy levels
    top = (math.isqrt(m) - 1) * half

    def wrong(level, offset):  # per-dimension error probability
        lower = q_function((half + offset) / sd) * (level > -top + half / 2)
        upper = q_function((half - offset) / sd) * (level < top - half / 2)
        return lower + upper

    er, ei = wrong(sent.real, dev.real), wrong(sent.imag, dev.imag)
    return (er + ei - er * ei).mean(-1)  # = 1 - (1 - e_R)(1 - e_I) without cancellation at tiny SER


def ser_monte_carlo(
    h: torch.Tensor,
    x: torch.Tensor,
    noise_var,
    modulation: str | int = "qpsk",
    *,
    combiner: torch.Tensor | None = None,
    num_symbols: int = 10000,
    generator: torch.Generator | None = None,
    detection: str = "equalized",
) -> torch.Tensor:
    """Monte Carlo per-stream SER ``[..., K, Ns]``: transmit ``num_symbols`` random symbol vectors per
    channel, add CN(0, sigma^2) noise at every receive antenna, combine and detect. Each estimate is a
    mean of ``num_symbols`` Bernoulli trials.

    Shapes and arguments as :func:`ser_conditional`. ``detection="equalized"`` divides the combiner
    output ``z`` by the effective gain and slices to the nearest point; ``"sign"`` (QPSK) decides
    ``sign(Re z)``, ``sign(Im z)`` on the raw output (ties ``>= 0`` to ``+``, the MSER paper's eq. 6) and
    for M > 4 is the same as ``"equalized"``."""
    num_symbols = check_int("num_symbols", num_symbols, 1)
    m = _order(modulation)
    detection = _detection(detection, m)
    hh, cc, g, cn, k, ns = _prepare(h, x, combiner)
    d = k * ns
    pts = qam_constellation(m, dtype=h.dtype, device=h.device)
    batch = g.shape[:-3]
    idx = torch.randint(m, (*batch, d, num_symbols), generator=generator, device=h.device)
    s = pts[idx]  # [..., D, T]
    nr = hh.shape[-2]
    rdtype = h.real.dtype
    std = torch.sqrt(_noise(noise_var, cn) / 2)
    if std.dim():
        std = std[..., None, None, None]
    noise = (
        torch.complex(
            torch.randn((*batch, k, nr, num_symbols), generator=generator, device=h.device, dtype=rdtype),
            torch.randn((*batch, k, nr, num_symbols), generator=generator, device=h.device, dtype=rdtype),
        )
        * std
    )
    y = hh @ (x @ s).unsqueeze(-3) + noise  # [..., K, Nr, T]
    z = cc.mH @ y  # [..., K, Ns, T]
    flat = torch.arange(d, device=h.device).view(k, ns)
    own = torch.gather(g, -1, flat[..., None].expand(*g.shape[:-1], 1))  # [..., K, Ns, 1]
    if detection == "sign":  # QPSK: per-dimension sign of the raw output, ties to +
        a = 1 / math.sqrt(2)
        shat = torch.complex((2 * (z.real >= 0).to(rdtype) - 1) * a, (2 * (z.imag >= 0).to(rdtype) - 1) * a)
    else:
        shat = detect_qam(z / own, m)
    sent = s.reshape(*batch, k, ns, num_symbols)
    err = (shat - sent).abs() > 1e-3 / math.sqrt(m)
    return err.to(rdtype).mean(-1)
