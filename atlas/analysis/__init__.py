"""Analyses of the circuit graph: each reads a scope (runs and optional downstream layers) and returns tables.

Nothing here prints or draws: the CLI formats results, `atlas.plots` draws them, `atlas.report` assembles them.
GDS algorithms run on named projections created by :func:`atlas.analysis.projection.projected`, which always drops
them again.
"""

from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope, resolve_scope

__all__ = ["AnalysisResult", "Scope", "resolve_scope"]
