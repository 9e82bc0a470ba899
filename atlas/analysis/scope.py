"""Analysis scopes: an explicit set of runs and optional downstream layers, so two runs never mix silently."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import queries
from atlas.db.connection import Graph
from atlas.errors import AtlasError


@dataclass(frozen=True)
class RunInfo:
    """What an analysis needs to know about one run."""

    id: str
    model: str | None
    sae: str | None
    source_layer: int | None
    downstream_layers: tuple[int, ...]


@dataclass(frozen=True)
class Scope:
    """Runs analysed together and, optionally, the downstream (target) layers their edges are restricted to."""

    runs: tuple[str, ...]
    layers: tuple[int, ...] | None = None
    run_info: tuple[RunInfo, ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """Stable, readable name of the scope: ``runA+runB`` or ``runA@L6,11``."""
        key = "+".join(self.runs)
        return key + ("@L" + ",".join(map(str, self.layers)) if self.layers else "")

    def parameters(self) -> dict[str, Any]:
        """The Cypher parameters every scoped statement takes."""
        return {"runs": list(self.runs), "layers": list(self.layers) if self.layers else None}

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
        """The CLI flags that select this scope, for reproducible commands in reports."""
        flags = [f"--run {run}" for run in self.runs] + [f"--layer {layer}" for layer in self.layers or ()]
        return " ".join(flags)


def resolve_scope(graph: Graph, runs: list[str] | tuple[str, ...], layers: list[int] | tuple[int, ...] | None = None
                  ) -> Scope:
    """Check that every run exists (and the layers belong to them) and return the scope with the runs' layers."""
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
    return Scope(runs, chosen, info)
