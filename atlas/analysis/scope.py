"""Analysis scopes: an explicit set of runs and optional downstream layers, so two runs never mix silently."""

from __future__ import annotations

import re
import shlex
import uuid
from dataclasses import dataclass, field
from typing import Any

import queries
from atlas.db.connection import Graph
from atlas.errors import AtlasError
from loaders.schema import escape_name


@dataclass(frozen=True)
class RunInfo:
    """What an analysis needs to know about one run."""

    id: str
    model: str | None
    sae: str | None
    source_layer: int | None
    downstream_layers: tuple[int, ...]


# The edge q-values a scope can filter on: the run-level BH q of the t-test p, or the BH q of the permutation p
# (`atlas trace calibrate`). An edge without the chosen value (run not finalised, feature not calibrated) is left out.
Q_COLUMNS = ("q", "perm_q")


@dataclass(frozen=True)
class Scope:
    """Runs analysed together and, optionally, the downstream (target) layers their edges are restricted to and the
    largest q-value (``q`` or ``perm_q``) an edge may have."""

    runs: tuple[str, ...]
    layers: tuple[int, ...] | None = None
    run_info: tuple[RunInfo, ...] = field(default=(), compare=False)
    max_q: float | None = None
    q_column: str = "q"

    @property
    def key(self) -> str:
        """Stable, readable name of the scope: ``runA+runB``, ``runA@L6,11`` or ``runA@perm_q<=0.05`` (``+``, ``@``
        and ``%`` in a run id escaped, so runs ``a+b`` and ``a``, ``b`` are different scopes)."""
        key = "+".join(escape_name(run, "+@") for run in self.runs)
        key += "@L" + ",".join(map(str, self.layers)) if self.layers else ""
        return key + (f"@{self.q_column}<={self.max_q:g}" if self.max_q is not None else "")

    def parameters(self) -> dict[str, Any]:
        """The Cypher parameters every scoped statement takes."""
        return {"runs": list(self.runs), "layers": list(self.layers) if self.layers else None,
                "max_q": self.max_q, "q_column": self.q_column}

    def projection_name(self) -> str:
        """A GDS graph name made from the scope plus a random suffix, so concurrent analyses never collide."""
        readable = re.sub(r"[^A-Za-z0-9_.,@+-]", "_", self.key)[:80]
        return f"atlas.{readable}.{uuid.uuid4().hex[:8]}"

    @property
    def source_layers(self) -> tuple[int, ...]:
        """The source layers of the runs."""
        return tuple(sorted({info.source_layer for info in self.run_info if info.source_layer is not None}))

    @property
    def downstream_layers(self) -> tuple[int, ...]:
        """Downstream layers of the runs, restricted to the scope's layers."""
        layers = {layer for info in self.run_info for layer in info.downstream_layers}
        if self.layers:
            layers &= set(self.layers)
        return tuple(sorted(layers))

    def command_flags(self) -> str:
        """The CLI flags that select this scope, shell-quoted, for reproducible commands in reports."""
        flags = [f"--run {shlex.quote(run)}" for run in self.runs] + [f"--layer {layer}" for layer in self.layers or ()]
        if self.max_q is not None:
            flags += [f"--max-q {self.max_q:g}"] + (["--q-column perm_q"] if self.q_column == "perm_q" else [])
        return " ".join(flags)


def resolve_scope(graph: Graph, runs: list[str] | tuple[str, ...], layers: list[int] | tuple[int, ...] | None = None,
                  max_q: float | None = None, q_column: str = "q") -> Scope:
    """Check that every run exists (the layers belong to them, and the runs are calibrated when filtering on
    ``perm_q``) and return the scope with the runs' layers."""
    runs = tuple(dict.fromkeys(runs))
    if not runs:
        raise AtlasError("no run given: pass --run RUN_ID (repeat it to analyse several runs together)")
    rows = graph.read(queries.internal("scope_runs").text, runs=list(runs))
    found = {row["id"]: row for row in rows}
    missing = [run for run in runs if run not in found]
    if missing:
        known = [row["id"] for row in graph.read(queries.internal("known_runs").text)]
        raise AtlasError(f"no run {', '.join(map(repr, missing))} in the graph "
                         f"(known runs: {', '.join(known) or 'none; load one with `atlas ingest`'})")
    info = tuple(RunInfo(run, found[run]["model"], found[run]["sae"], found[run]["source_layer"],
                         tuple(found[run]["downstream_layers"] or ())) for run in runs)
    chosen = tuple(sorted(set(layers))) if layers else None
    if chosen:
        available = {layer for run in info for layer in run.downstream_layers}
        unknown = sorted(set(chosen) - available)
        if unknown:
            raise AtlasError(f"layer {', '.join(map(str, unknown))} is not a downstream layer of "
                             f"{'+'.join(runs)} (downstream layers: {', '.join(map(str, sorted(available)))})")
    if q_column not in Q_COLUMNS:
        raise AtlasError(f"q column must be one of {', '.join(Q_COLUMNS)}, got {q_column!r}")
    if max_q is not None and not 0 < max_q <= 1:
        raise AtlasError(f"--max-q must be in (0, 1], got {max_q}")
    uncalibrated = [run for run in runs if not found[run]["calibrated"]]
    if max_q is not None and q_column == "perm_q" and uncalibrated:
        raise AtlasError(f"run {', '.join(uncalibrated)} has no permutation q-values: calibrate it "
                         "(atlas trace run RUN_DIR --keep-deltas; atlas trace calibrate RUN_DIR) and load it again")
    return Scope(runs, chosen, info, max_q, q_column)
