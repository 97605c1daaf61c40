"""One-command reproductions of the papers' figures and claims."""

from .unfolded_pga import reproduce_unfolded_pga

__all__ = ["reproduce_unfolded_pga"]
