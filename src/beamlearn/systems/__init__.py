"""The systems: one folder per paper, listed explicitly in :data:`SYSTEMS`.

Adding a system means a new folder here with a :class:`System` entry, one line in :data:`SYSTEMS`,
its docs page and its benchmark (``docs/architecture.md``). From outside the package, an installed
package names its ``System`` in an entry point of the group ``beamlearn.systems``, and
:func:`register_system` adds one at run time (a test, a notebook), without editing this list.
"""

from __future__ import annotations

from .base import System
from .jcehb import SYSTEM as JCEHB
from .mser import SYSTEM as MSER
from .unfolded_pga import SYSTEM as UNFOLDED_PGA
from .uplink import SYSTEM as UPLINK

__all__ = ["System", "SYSTEMS", "register_system", "unregister_system", "all_systems", "get_system"]

SYSTEMS: list[System] = [
    UNFOLDED_PGA,
    MSER,
    JCEHB,
    UPLINK,
]

_REGISTERED: dict[str, System] = {}


def register_system(system: System, *, replace: bool = False) -> System:
    """Add a system from outside the package (a name clash raises unless ``replace``)."""
    if not isinstance(system, System):
        raise TypeError(f"system must be a System, got {type(system).__name__}")
    if any(s.name == system.name for s in all_systems()) and not replace:
        raise ValueError(f"a system named {system.name!r} exists; pass replace=True to override it")
    _REGISTERED[system.name] = system
    return system


def unregister_system(name: str) -> None:
    """Remove a system added by :func:`register_system` (the listed systems cannot be removed)."""
    _REGISTERED.pop(name, None)


_PLUGINS: list[System] | None = None


def _plugins() -> list[System]:
    """Systems of installed packages: ``System`` objects named by entry points of the group
    ``beamlearn.systems`` (loaded once; a plugin that fails to load is skipped with a warning)."""
    global _PLUGINS
    if _PLUGINS is None:
        import warnings
        from importlib.metadata import entry_points

        _PLUGINS = []
        for ep in entry_points(group="beamlearn.systems"):
            try:
                system = ep.load()
            except Exception as e:  # noqa: BLE001 - a broken plugin must not break the library
                warnings.warn(f"beamlearn system plugin {ep.name!r} failed to load: {e}", stacklevel=2)
                continue
            if isinstance(system, System):
                _PLUGINS.append(system)
    return _PLUGINS


def all_systems() -> list[System]:
    """The listed systems, then those of installed plugins, then the registered ones."""
    out = [s for s in SYSTEMS if s.name not in _REGISTERED]
    out += [s for s in _plugins() if s.name not in _REGISTERED and s.name not in {x.name for x in out}]
    return out + list(_REGISTERED.values())


def get_system(name: str) -> System:
    for s in all_systems():
        if s.name == name:
            return s
    raise ValueError(f"unknown system {name!r}; choose one of {', '.join(s.name for s in all_systems())}")
