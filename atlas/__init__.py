"""Circuit Atlas: map, store and analyse the SAE-feature circuits of single-cell foundation models.

Importing the package is cheap: torch and the Neo4j driver are imported only by the modules that need them, so a
loader host never imports torch and a tracing worker never imports the driver.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``atlas.connect`` and ``atlas.Atlas`` load the workbench (pandas, the Neo4j driver) on first use only."""
    if name in ("connect", "Atlas"):
        from atlas import workbench

        return getattr(workbench, name)
    raise AttributeError(f"module 'atlas' has no attribute {name!r}")
