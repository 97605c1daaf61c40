"""Channel estimation from pilots: least squares, regularised LS, RLS and LMMSE (batched, any leading dimensions)."""

from .pilots import lmmse_estimate, ls_estimate, orthogonal_pilots, uplink_ls_statistic
from .rls import ls_estimate_regularized, rls_estimate

__all__ = [
    "lmmse_estimate",
    "ls_estimate",
    "ls_estimate_regularized",
    "orthogonal_pilots",
    "rls_estimate",
    "uplink_ls_statistic",
]
