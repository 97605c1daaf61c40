"""Common interface of all channel sources."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch

from .._dtypes import real_dtype, resolve_dtype
from .._validation import check_int

__all__ = ["ChannelModel", "make_generator", "complex_normal"]


def make_generator(seed: int | None, device: torch.device | str | None) -> torch.Generator | None:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (``None`` -> the global RNG)."""
    if seed is None:
        return None
    check_int("seed", seed, 0, 2**63 - 1)
    g = torch.Generator(device=torch.device(device) if device is not None else "cpu")
    g.manual_seed(int(seed))
    return g


def complex_normal(shape, generator, device, dtype, variance: float = 1.0) -> torch.Tensor:
    """i.i.d. CN(0, variance) samples of the given complex dtype."""
    rdtype = real_dtype(dtype)
    std = (variance / 2) ** 0.5
    re = torch.randn(shape, generator=generator, device=device, dtype=rdtype)
    im = torch.randn(shape, generator=generator, device=device, dtype=rdtype)
    return torch.complex(re * std, im * std)


class ChannelModel(abc.ABC):
    """A seeded, batched source of narrowband channels.

    Calling the model returns channels whose rows are the users' conjugated channel vectors, so the
    received signal of user ``k`` for a transmit vector ``x`` is ``y_k = H[..., k, :] @ x`` (MISO) or
    ``y_k = H[..., k, :, :] @ x`` (MIMO):

    * ``[*batch, K, N]`` when the users have one antenna (``num_rx_antennas == 1``),
    * ``[*batch, K, Nr, N]`` otherwise (or always, with ``squeeze_rx=False``).

    Random numbers are drawn on ``device`` from a generator seeded with ``seed``, so the same seed on
    the same device type gives the same channels.
    """

    num_users: int
    num_bs_antennas: int
    num_rx_antennas: int = 1

    def __call__(
        self,
        batch_size: int | Sequence[int],
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.complex64,
        squeeze_rx: bool = True,
    ) -> torch.Tensor:
        batch_shape, generator, device, dtype = self._draw_setup(batch_size, seed, generator, device, dtype)
        h = self._sample(batch_shape, generator, device, dtype)  # [*B, (F,) K, Nr, N]
        if squeeze_rx and self.num_rx_antennas == 1:
            h = h.squeeze(-2)
        return h

    def _draw_setup(self, batch_size, seed, generator, device, dtype):
        """Check the arguments of a draw; return ``(batch_shape, generator, device, dtype)``."""
        batch_shape = _batch_shape(batch_size)
        dtype = resolve_dtype(dtype)
        _check_memory(batch_shape, self, dtype)
        if seed is not None and generator is not None:
            raise ValueError("give at most one of seed and generator")
        if device is None:
            device = generator.device if generator is not None else torch.device("cpu")
        device = torch.device(device)
        if generator is None:
            generator = make_generator(seed, device)
        return batch_shape, generator, device, dtype

    @abc.abstractmethod
    def _sample(self, batch_shape: tuple[int, ...], generator, device, dtype) -> torch.Tensor:
        """Return channels ``[*batch_shape, K, Nr, N]``."""

    def describe(self) -> dict:
        """Parameters of this model, for listings and metadata."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def memory_bytes() -> int | None:
    """Physical memory of this machine in bytes (``None`` where the OS does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def _check_memory(batch_shape, model, dtype) -> None:
    """Refuse a draw whose channels alone would not fit in memory, before allocating anything."""
    import math

    n = math.prod(batch_shape)
    per = model.num_users * getattr(model, "num_rx_antennas", 1) * model.num_bs_antennas
    need = n * per * torch.empty((), dtype=dtype).element_size() * 3  # the draw and its temporaries
    have = memory_bytes()
    if have is not None and need > have:
        raise ValueError(
            f"cannot draw {n} channels of {per} entries: they need about {need / 2**30:.1f} GiB, more than this "
            f"machine's {have / 2**30:.1f} GiB of memory; ask for fewer channels"
        )


def _batch_shape(batch_size) -> tuple[int, ...]:
    if isinstance(batch_size, int) and not isinstance(batch_size, bool):
        return (check_int("batch_size", batch_size, 1),)
    shape = tuple(batch_size)
    for i, b in enumerate(shape):
        check_int(f"batch_size[{i}]", b, 1)
    return shape
