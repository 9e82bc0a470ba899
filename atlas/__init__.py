"""Circuit Atlas: map, store and analyse the SAE-feature circuits of single-cell foundation models.

Importing the package is cheap: torch and the Neo4j driver are imported only by the modules that need them, so a
loader host never imports torch and a tracing worker never imports the driver. Library modules import the version
from :mod:`atlas.version`, not from this root, so whatever the root exposes never becomes their dependency
(ARCHITECTURE.md).
"""

from atlas.version import __version__

__all__ = ["__version__", "connect", "Atlas"]


def __getattr__(name: str):
    """``atlas.connect`` and ``atlas.Atlas`` load the workbench (pandas, the Neo4j driver) on first use only."""
    if name in ("connect", "Atlas"):
        from atlas import workbench

        return getattr(workbench, name)
    raise AttributeError(f"module 'atlas' has no attribute {name!r}")
