"""Channel estimation from pilots: least squares and LMMSE (batched, any leading dimensions)."""

from .pilots import lmmse_estimate, ls_estimate, orthogonal_pilots, uplink_ls_statistic

__all__ = ["lmmse_estimate", "ls_estimate", "orthogonal_pilots", "uplink_ls_statistic"]
