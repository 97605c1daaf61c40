"""Signalling overhead (spec s4.12, eqs. 47-51) and complexity orders (spec s7, eqs. 34-38) of JCEHB.

* :func:`pilot_bits`: the pilot bits of one full-CSI acquisition ``Q_f`` (47) and of one equivalent-CSI
  acquisition ``Q_eq`` (48).
* :func:`signalling_overhead`: the cumulative pilot bits after ``n`` frames of the single-timescale scheme
  (49), the offline mixed-timescale scheme (50) and the online mixed-timescale scheme (51) -- Fig. 9 plots
  them against ``n = 1 ... T_f``, i.e. with ``T_f`` replaced by ``n``; :func:`overhead_curve` tabulates them.
* :func:`complexity`: the order counts of RLS (34), SSCA (35), CEDUN (36), HBDUN (37) and the black-box
  networks (38), evaluated literally as printed in the spec.

Plain integer arithmetic (no tensors). Defaults: the system of spec s3.2 (``N_t = 64``, ``N_RF^t = 16``,
``N_r = 32``, ``N_RF^r = 4``, ``K = N_s = 4``, ``L = 16``) and the overhead constants of spec s9 item 32
(``q = 8`` bits per pilot element, ``T_s = 10`` slots per frame, ``N_sample = 20`` samples).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..._validation import check_int

__all__ = ["pilot_bits", "signalling_overhead", "overhead_curve", "complexity", "HBDUN_INVERSE_EXPONENT"]

#: Exponent of ``N_RF^t`` in the first term of (37): the paper's cost of the learned inverse ``A^+ B``.
#: It is loose (``A^+`` is diagonal, so ``A^+ B`` is ``O(n^2)``) but it is the one that reproduces the spec's
#: quoted HBDUN count ~1.450e6 (with the exponent 2 the count would be 1,413,120).
HBDUN_INVERSE_EXPONENT = 2.37


def _check_sizes(num_tx_antennas, num_tx_rf, num_rx_antennas, num_rx_rf, pilot_length, bits_per_element):
    n_t = check_int("num_tx_antennas", num_tx_antennas, 1)
    m_t = check_int("num_tx_rf", num_tx_rf, 1, n_t)
    n_r = check_int("num_rx_antennas", num_rx_antennas, 1)
    m_r = check_int("num_rx_rf", num_rx_rf, 1, n_r)
    ell = check_int("pilot_length", pilot_length, 1)
    q = check_int("bits_per_element", bits_per_element, 1)
    return n_t, m_t, n_r, m_r, ell, q


def pilot_bits(
    num_tx_antennas: int = 64,
    num_tx_rf: int = 16,
    num_rx_antennas: int = 32,
    num_rx_rf: int = 4,
    pilot_length: int = 16,
    bits_per_element: int = 8,
) -> dict:
    """Pilot bits of one full-CSI and of one equivalent-CSI acquisition (eqs. 47, 48).

    * (47) ``Q_f = q (N_r N_RF^r + N_t N_RF^t + N_RF^t L)``: the full-CSI training matrices
      ``W~_RF,k`` (``N_r x N_RF^r``), ``F~_RF,k`` (``N_t x N_RF^t``) and the pilot ``X~_k`` (``N_RF^t x L``);
    * (48) ``Q_eq = q N_RF^t L``: the equivalent-CSI pilot ``X~_eq,k`` (``N_RF^t x L``).

    Args: ``num_tx_antennas`` ``N_t``, ``num_tx_rf`` ``N_RF^t`` (in ``[1, N_t]``), ``num_rx_antennas``
    ``N_r``, ``num_rx_rf`` ``N_RF^r`` (in ``[1, N_r]``), ``pilot_length`` ``L`` and ``bits_per_element``
    ``q``, all integers >= 1.

    Returns ``{"Q_f", "Q_eq"}`` in bits and ``{"elements_f", "elements_eq"}`` the element counts
    (``Q = q * elements``). At the defaults ``Q_f = 1408 q`` and ``Q_eq = 256 q`` (acceptance A7).

    Example:
        >>> b = pilot_bits(bits_per_element=1)
        >>> b["Q_f"], b["Q_eq"]
        (1408, 256)
    """
    n_t, m_t, n_r, m_r, ell, q = _check_sizes(
        num_tx_antennas, num_tx_rf, num_rx_antennas, num_rx_rf, pilot_length, bits_per_element
    )
    elements_f = n_r * m_r + n_t * m_t + m_t * ell
    elements_eq = m_t * ell
    return {"Q_f": q * elements_f, "Q_eq": q * elements_eq, "elements_f": elements_f, "elements_eq": elements_eq}


def signalling_overhead(
    num_frames: int,
    *,
    slots_per_frame: int = 10,
    num_samples: int = 20,
    num_tx_antennas: int = 64,
    num_tx_rf: int = 16,
    num_rx_antennas: int = 32,
    num_rx_rf: int = 4,
    pilot_length: int = 16,
    bits_per_element: int = 8,
) -> dict:
    """Cumulative pilot bits after ``n = num_frames`` frames for the three schemes (eqs. 49-51, Fig. 9).

    With ``T_s = slots_per_frame`` and ``N_sample = num_samples`` (and ``T_f`` replaced by ``n`` as in
    Fig. 9):

    * (49) single timescale, full CSI every slot: ``Q_single = n T_s Q_f``;
    * (50) offline mixed timescale, ``N_sample`` full-CSI samples for the statistics (spent from the start)
      and equivalent CSI every slot: ``Q_offline = n T_s Q_eq + N_sample Q_f``;
    * (51) online mixed timescale, full CSI once per frame and equivalent CSI every slot:
      ``Q_online = n (T_s Q_eq + Q_f)``.

    ``Q_f``, ``Q_eq`` as in :func:`pilot_bits` (same size arguments). All arguments are integers >= 1.

    Returns ``{"num_frames", "Q_f", "Q_eq", "Q_single", "Q_offline", "Q_online"}`` in bits.

    Example:
        >>> o = signalling_overhead(2, bits_per_element=1)  # T_s = 10, N_sample = 20
        >>> o["Q_offline"], o["Q_single"], o["Q_online"]
        (33280, 28160, 7936)
    """
    n = check_int("num_frames", num_frames, 1)
    t_s = check_int("slots_per_frame", slots_per_frame, 1)
    n_sample = check_int("num_samples", num_samples, 1)
    b = pilot_bits(num_tx_antennas, num_tx_rf, num_rx_antennas, num_rx_rf, pilot_length, bits_per_element)
    q_f, q_eq = b["Q_f"], b["Q_eq"]
    return {
        "num_frames": n,
        "Q_f": q_f,
        "Q_eq": q_eq,
        "Q_single": n * t_s * q_f,
        "Q_offline": n * t_s * q_eq + n_sample * q_f,
        "Q_online": n * (t_s * q_eq + q_f),
    }


def overhead_curve(max_frames: int = 16, **kw) -> list[tuple[int, int, int, int]]:
    """The Fig. 9 curves: rows ``(n, Q_single, Q_offline, Q_online)`` for ``n = 1 ... max_frames`` (``T_f``).

    ``kw`` are the keyword arguments of :func:`signalling_overhead` (``slots_per_frame``, ``num_samples``,
    the sizes, ``bits_per_element``); ``max_frames`` is an integer >= 1.

    Example:
        >>> overhead_curve(16, bits_per_element=1)[-1]  # n = T_f = 16: single >> offline ~ online
        (16, 225280, 69120, 63488)
    """
    t_f = check_int("max_frames", max_frames, 1)
    rows = []
    for n in range(1, t_f + 1):
        o = signalling_overhead(n, **kw)
        rows.append((n, o["Q_single"], o["Q_offline"], o["Q_online"]))
    return rows


def _check_widths(name: str, widths) -> tuple[int, ...]:
    if isinstance(widths, str | bytes) or not isinstance(widths, Sequence):
        raise TypeError(f"{name} must be a sequence of layer widths, got {widths!r}")
    if len(widths) < 2:
        raise ValueError(f"{name} must hold at least 2 layer widths (input and output), got {len(widths)}")
    return tuple(check_int(f"{name}[{i}]", w, 1) for i, w in enumerate(widths))


def complexity(
    num_users: int = 4,
    num_streams: int = 4,
    num_tx_rf: int = 16,
    num_rx_rf: int = 4,
    *,
    rls_iterations: int = 90,
    sca_iterations: int = 70,
    cedun_layers: int = 16,
    hbdun_layers: int = 5,
    blackbox_ce_widths: Sequence[int] = (128, 512, 512, 128),
    blackbox_bf_widths: Sequence[int] = (512, 1024, 1024, 640),
) -> dict:
    """Order counts of the conventional, deep-unfolded and black-box methods (eqs. 34-38, spec s7).

    These are the *operation-count orders* inside the paper's ``O(.)`` expressions, evaluated literally as
    printed (constants dropped, complex operations not weighted) -- not flop counts. With ``K = num_users``,
    ``N_s = num_streams``, ``M = N_RF^t = num_tx_rf``, ``R = N_RF^r = num_rx_rf``:

    * (34) RLS: ``L_r K M^2`` (``L_r = rls_iterations``);
    * (35) SSCA: ``L_s [K N_s M^3 + K^2 N_s^2 M^2 R + K N_s M^2 R]`` (``L_s = sca_iterations``);
    * (36) CEDUN: ``L_c K M^2`` (``L_c = cedun_layers``);
    * (37) HBDUN: ``L_h [K N_s M^2.37 + K^2 N_s^2 M^2 R + K N_s M^2 R]`` (``L_h = hbdun_layers``; the
      paper's exponent 2.37 for the learned inverse ``A^+ B``, :data:`HBDUN_INVERSE_EXPONENT`, loose since
      ``A^+`` is diagonal, but the one that reproduces the spec's number);
    * (38) black box: ``sum_l K F_c,l F_c,l+1 + sum_l K F_h,l F_h,l+1`` over consecutive layer widths
      ``F_c`` = ``blackbox_ce_widths`` (channel-estimation net) and ``F_h`` = ``blackbox_bf_widths``
      (digital net), both including the input and output sizes. The defaults are the widths of spec s4.14 at
      the default system (CE 128-512-512-128, digital 512-1024-1024-640). The factor ``K`` multiplies both
      sums as printed, although the spec's digital net takes all users' ``H_eq`` at once.

    Defaults (acceptance A8): RLS 92,160; CEDUN 16,384; SSCA 24,084,480 (~2.408e7); HBDUN ~1,449,770
    (~1.450e6); black box 10,485,760.

    Integers >= 1 throughout (the widths: a sequence of at least 2). Returns ``{"rls", "ssca", "cedun",
    "blackbox", "blackbox_ce", "blackbox_bf"}`` as ints and ``"hbdun"`` as a float (the non-integer exponent).

    Example:
        >>> c = complexity()
        >>> c["rls"], c["cedun"], c["ssca"], round(c["hbdun"], -3)
        (92160, 16384, 24084480, 1450000.0)
    """
    k = check_int("num_users", num_users, 1)
    n_s = check_int("num_streams", num_streams, 1)
    m = check_int("num_tx_rf", num_tx_rf, 1)
    r = check_int("num_rx_rf", num_rx_rf, 1)
    l_r = check_int("rls_iterations", rls_iterations, 1)
    l_s = check_int("sca_iterations", sca_iterations, 1)
    l_c = check_int("cedun_layers", cedun_layers, 1)
    l_h = check_int("hbdun_layers", hbdun_layers, 1)
    f_c = _check_widths("blackbox_ce_widths", blackbox_ce_widths)
    f_h = _check_widths("blackbox_bf_widths", blackbox_bf_widths)

    shared = k**2 * n_s**2 * m**2 * r + k * n_s * m**2 * r  # the terms common to (35) and (37)
    ce = sum(k * a * b for a, b in zip(f_c[:-1], f_c[1:], strict=True))
    bf = sum(k * a * b for a, b in zip(f_h[:-1], f_h[1:], strict=True))
    return {
        "rls": l_r * k * m**2,
        "ssca": l_s * (k * n_s * m**3 + shared),
        "cedun": l_c * k * m**2,
        "hbdun": l_h * (k * n_s * float(m) ** HBDUN_INVERSE_EXPONENT + shared),
        "blackbox": ce + bf,
        "blackbox_ce": ce,
        "blackbox_bf": bf,
    }
