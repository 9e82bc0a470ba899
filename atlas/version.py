"""The code version recorded in run manifests and experiment records (the package root re-exports it)."""

__version__ = "0.1.0"
