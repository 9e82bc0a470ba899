"""Any GDS algorithm of the installed library, in stream or stats mode, on a scope's projection (`atlas gds`).

The algorithms offered are the ``stream``/``stats`` procedures the server lists (``gds.list()``) that the
graphdatascience client has typed endpoints for; the configuration keys are that endpoint's parameters. The
projection is the only thing created on the server, and it is dropped; node ids in the results are replaced by
feature uid, label and layer.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from neo4j.exceptions import ClientError

import queries
from atlas.analysis.projection import Projection, projected
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph, translate_errors
from atlas.errors import AtlasError

MODES = ("stream", "stats")
# Catalog operations and the alpha/beta tiers (ML pipelines, models) are not algorithms on a projection.
_EXCLUDED_NAMESPACES = ("graph", "alpha", "beta")
# Client parameters that steer the call rather than the algorithm: not user configuration.
_CALL_PARAMETERS = {"self", "G", "log_progress", "job_id", "sudo", "username"}
# Columns of stream results that hold GDS node ids, and the prefix their feature columns get.
NODE_COLUMNS = {"nodeId": "", "node1": "node1_", "node2": "node2_", "sourceNode": "source_", "targetNode": "target_"}


def _normal(name: str) -> str:
    """Spelling-free key of a name: ``pageRank``, ``page_rank`` and ``PAGERANK`` are the same algorithm."""
    return name.replace("_", "").lower()


def _camel(name: str) -> str:
    """The server's spelling of a client parameter: ``damping_factor`` -> ``dampingFactor``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _endpoints(gds: Any, algorithm: str) -> Any | None:
    """The client's endpoints object of a server algorithm name (``pageRank``, ``nodeSimilarity.filtered``)."""
    endpoints = gds
    for part in algorithm.split("."):
        attributes = {_normal(attribute): attribute for attribute in dir(type(endpoints))
                      if not attribute.startswith("_")}
        if _normal(part) not in attributes:
            return None
        endpoints = getattr(endpoints, attributes[_normal(part)])
    return endpoints


def installed_algorithms(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Algorithm (server spelling, e.g. ``pageRank``) -> its modes that both the server and the client offer."""
    algorithms: dict[str, list[str]] = {}
    for row in graph.read(queries.internal("gds_procedures").text):
        algorithm, mode = row["name"].removeprefix("gds.").rsplit(".", 1)
        if algorithm.split(".")[0] in _EXCLUDED_NAMESPACES:
            continue
        endpoints = _endpoints(graph.gds, algorithm)
        if endpoints is not None and callable(getattr(endpoints, mode, None)):
            algorithms.setdefault(algorithm, []).append(mode)
    return {algorithm: tuple(sorted(modes)) for algorithm, modes in sorted(algorithms.items())}


def resolve_algorithm(graph: Graph, name: str, mode: str) -> str:
    """The server name of a user-given algorithm name; one line listing the valid ones when it is unknown."""
    if mode not in MODES:
        raise AtlasError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    algorithms = installed_algorithms(graph)
    by_key = {_normal(algorithm): algorithm for algorithm in algorithms}
    algorithm = by_key.get(_normal(name.removeprefix("gds.")))
    if algorithm is None:
        raise AtlasError(f"no GDS algorithm {name!r}; installed: {', '.join(algorithms)}")
    if mode not in algorithms[algorithm]:
        raise AtlasError(f"{algorithm} has no {mode} mode (it has: {', '.join(algorithms[algorithm])})")
    return algorithm


def configuration_keys(method: Any) -> dict[str, inspect.Parameter]:
    """The configuration parameters of a client endpoint method, by client (snake_case) name."""
    return {name: parameter for name, parameter in inspect.signature(method).parameters.items()
            if name not in _CALL_PARAMETERS}


def bind_configuration(algorithm: str, method: Any, configuration: dict[str, Any]) -> dict[str, Any]:
    """Client keyword arguments from ``key -> value`` (camelCase or snake_case keys); one line listing the valid
    keys when a key is unknown or a required one is missing."""
    parameters = configuration_keys(method)
    by_key = {_normal(name): name for name in parameters}
    valid = ", ".join(_camel(name) for name in parameters)
    bound = {}
    for key, value in configuration.items():
        if _normal(key) not in by_key:
            raise AtlasError(f"{algorithm} has no configuration key {key!r}; valid keys: {valid}")
        bound[by_key[_normal(key)]] = value
    missing = [_camel(name) for name, parameter in parameters.items()
               if parameter.default is inspect.Parameter.empty and name not in bound]
    if missing:
        raise AtlasError(f"{algorithm} needs {', '.join(f'-c {key}=...' for key in missing)} (valid keys: {valid})")
    return bound


def check_algorithm_memory(projection: Projection, algorithm: str, endpoints: Any, arguments: dict[str, Any]
                           ) -> int | None:
    """GDS's memory estimate of the run with the analyst's configuration (None when the client or the server has
    none); refuse when it exceeds the free heap."""
    estimate = getattr(endpoints, "estimate", None)
    if estimate is None:
        return None
    accepted = configuration_keys(estimate)
    return projection.check_algorithm(algorithm, estimate,
                                      **{key: value for key, value in arguments.items() if key in accepted})


def with_features(graph: Graph, table: pd.DataFrame) -> pd.DataFrame:
    """Replace the GDS node-id columns of a stream result by feature uid, label and layer (nodeId first)."""
    columns = [column for column in NODE_COLUMNS if column in table.columns]
    if not columns or table.empty:
        return table
    node_ids = pd.unique(pd.concat([table[column] for column in columns])).tolist()
    rows = graph.read(queries.internal("node_features").text,
                      node_ids=[int(node_id) for node_id in node_ids])[0]["rows"]
    features = pd.DataFrame(rows, columns=["node_id", "uid", "label", "layer"]).set_index("node_id")
    joined = []
    for column in columns:
        prefix = NODE_COLUMNS[column]
        joined.append(features.reindex(table[column].to_numpy()).add_prefix(prefix).reset_index(drop=True))
    rest = table.drop(columns=columns).reset_index(drop=True)
    return pd.concat([*joined, rest], axis=1)


def stats_table(statistics: dict[str, Any]) -> pd.DataFrame:
    """A stats result as one row per statistic (nested maps flattened to ``a.b``): numbers in ``value``, anything
    else as text in ``text``, so the table has one type per column (Parquet, CSV, strict JSON)."""
    flat = pd.json_normalize(statistics).iloc[0]
    numeric = [isinstance(value, (int, float, np.number)) and not isinstance(value, bool) for value in flat]
    return pd.DataFrame({"statistic": flat.index,
                         "value": [float(value) if number else np.nan
                                   for value, number in zip(flat, numeric, strict=True)],
                         "text": [None if number else str(value) for value, number in zip(flat, numeric, strict=True)]})


@contextmanager
def server_errors(algorithm: str, mode: str) -> Iterator[None]:
    """A configuration the server rejects (a value out of range, a missing property) as one line."""
    try:
        yield
    except ClientError as error:
        # GDS wraps the reason: "Failed to invoke procedure ...: Caused by: java.lang.IllegalArgumentException: ..."
        reason = (error.message or str(error)).split("Caused by: ")[-1].split("Exception: ", 1)[-1]
        raise AtlasError(f"{algorithm}.{mode}: {reason}") from error


def run_algorithm(graph: Graph, scope: Scope, name: str, configuration: dict[str, Any] | None = None,
                  mode: str = "stream", weighted_undirected: bool = False, free_bytes: int | None = None
                  ) -> AnalysisResult:
    """Run one GDS algorithm on the scope's projection: stream rows joined to features, or its stats."""
    algorithm = resolve_algorithm(graph, name, mode)
    endpoints = _endpoints(graph.gds, algorithm)
    method = getattr(endpoints, mode)
    arguments = bind_configuration(algorithm, method, configuration or {})
    with projected(graph, scope, free_bytes, weighted_undirected=weighted_undirected) as projection, \
            server_errors(algorithm, mode):
        required = check_algorithm_memory(projection, algorithm, endpoints, arguments)
        with translate_errors(graph.settings):
            output = method(projection.gds_graph, **arguments)
        summary: dict[str, Any] = {"algorithm": algorithm, "mode": mode, "projection": projection.name,
                                   "projected_by": "native" if projection.native else "cypher",
                                   "features": projection.node_count, "edges": projection.relationship_count,
                                   "estimated_bytes": required}
        if mode == "stream":
            table = with_features(graph, output)
            summary["rows"] = len(table)
        else:
            table = stats_table(output.model_dump())
    flags = [f"-c {_camel(key)}={value if isinstance(value, str) else json.dumps(value)}"
             for key, value in arguments.items()]
    command = " ".join(["atlas gds", algorithm, scope.command_flags(), "--mode", mode,
                        *(["--weighted"] if weighted_undirected else []), *flags])
    return AnalysisResult("gds", scope.key, summary, {mode: table}, main=mode, command=command)


def node_result_column(table: pd.DataFrame, column: str | None = None) -> str:
    """The per-feature value column of a stream result to write back (given, or the only numeric one)."""
    if "uid" not in table.columns or any(prefix and f"{prefix}uid" in table.columns
                                         for prefix in NODE_COLUMNS.values()):
        raise AtlasError("--write stores one value per feature: the algorithm's stream must have one row per node")
    candidates = [name for name in table.columns if name not in ("uid", "label", "layer")
                  and np.issubdtype(table[name].dtype, np.number)]
    if column is not None:
        if column not in candidates:
            raise AtlasError(f"no numeric result column {column!r}; choose one of {', '.join(candidates) or 'none'}")
        return column
    if len(candidates) != 1:
        raise AtlasError(f"choose the column to write with --column ({', '.join(candidates) or 'none numeric'})")
    return candidates[0]
