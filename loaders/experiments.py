"""Writes experiment results (combinatorial ablation, trajectory steering) into Neo4j from plain records.

No torch here: the experiments produce tables (lists of dicts, e.g. ``DataFrame.to_dict("records")``), and this
module turns them into ``(:Run)``, ``(:Interaction)-[:HAS_MEMBER|INTERACTS_ON]->(:Feature)`` and
``(:Steering)-[:STEERS]->(:Feature)``. Every write MERGEs on the node ids, and an Interaction's links are replaced
as a whole in the same transaction, so a rerun updates in place and never duplicates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import queries
from atlas.db.connection import Graph
from loaders.schema import INTERACTION, INTERACTS_ON, RUN, STEERING, apply_schema, feature_uid

BATCH = 2000


def _clean(value: Any) -> Any:
    """Neo4j-storable value: numpy scalars and arrays to Python, a NaN scalar to None (the property is removed).

    Inside lists NaN stays NaN: Neo4j cannot store null in a list, and the position matters (e.g. per order).
    """
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _declared(record: Mapping[str, Any], declared: Mapping[str, str], skip: Sequence[str] = ()) -> dict[str, Any]:
    """The record's values for the properties the schema declares (others are not written)."""
    return {key: _clean(record[key]) for key in declared if key in record and key not in skip}


def _batches(rows: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _set_batches(set_rows: list[dict[str, Any]], by_set: Mapping[str, Sequence[Any]], max_sets: int = 200,
                 max_targets: int = 10 * BATCH) -> Iterator[list[dict[str, Any]]]:
    """Consecutive sets grouped so that one transaction writes at most ``max_sets`` sets and about ``max_targets``
    target links (a set is never split: its links are replaced as a whole)."""
    batch: list[dict[str, Any]] = []
    links = 0
    for row in set_rows:
        size = len(by_set.get(row["set_id"], ()))
        if batch and (len(batch) == max_sets or links + size > max_targets):
            yield batch
            batch, links = [], 0
        batch.append(row)
        links += size
    if batch:
        yield batch


def _feature(model: str, sae: str, layer: int, index: int) -> dict[str, Any]:
    layer, index = int(layer), int(index)
    return {"uid": feature_uid(model, sae, layer, index), "model": model, "sae": sae, "layer": layer, "index": index}


def store_run(graph: Graph, run: Mapping[str, Any]) -> None:
    """MERGE the experiment's Run node: ``run`` holds id, kind, model, sae, n_cells, thresholds, created_at, status."""
    properties = _declared(run, RUN.properties, skip=("id",))
    if isinstance(run.get("thresholds"), Mapping):
        properties["thresholds"] = json.dumps(run["thresholds"], sort_keys=True)
    graph.write(queries.internal("experiment_run_merge").text, run=run["id"], properties=properties)


def interaction_id(run: str, set_id: str) -> str:
    """The Interaction node id of one feature set of an ablation run."""
    return f"{run}/{set_id}"


def steering_id(run: str, uid: str, alpha: float) -> str:
    """The Steering node id of one feature and alpha of a steering run."""
    return f"{run}/{uid}/alpha={float(alpha):g}"


def store_ablation(graph: Graph, run: Mapping[str, Any], sets: Sequence[Mapping[str, Any]],
                   targets: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Store an ablation run: its Run node, one Interaction per set and its per-target statistics.

    ``sets``: records with ``set_id``, ``member_layers``, ``member_features`` and the summary columns of
    ``INTERACTION``; ``targets``: records with ``set_id``, ``target_layer``, ``target_feature`` and the
    ``INTERACTS_ON`` statistics (``class`` as the additivity class).
    """
    model, sae, run_id = run["model"], run["sae"], run["id"]
    store_run(graph, run)
    by_set: dict[str, list[Mapping[str, Any]]] = {}
    for target in targets:
        by_set.setdefault(str(target["set_id"]), []).append(target)
    set_rows, counts = [], {"interactions": 0, "links": 0}
    for record in sets:
        members = [_feature(model, sae, layer, index) | {"position": position}
                   for position, (layer, index) in enumerate(zip(record["member_layers"], record["member_features"],
                                                                 strict=True))]
        properties = _declared(record, INTERACTION.properties, skip=("id",)) | {
            "run": run_id, "members": [member["uid"] for member in members]}
        set_rows.append({"id": interaction_id(run_id, str(record["set_id"])), "properties": properties,
                         "members": members, "set_id": str(record["set_id"])})
    for batch in _set_batches(set_rows, by_set):
        target_rows = [
            _feature(model, sae, target["target_layer"], target["target_feature"])
            | {"interaction": row["id"],
               "properties": _declared(target, INTERACTS_ON.properties, skip=("run",)) | {"run": run_id}}
            for row in batch for target in by_set.get(row["set_id"], [])
        ]

        def work(tx, batch=batch, target_rows=target_rows) -> None:
            rows = [{key: row[key] for key in ("id", "properties", "members")} for row in batch]
            tx.run(queries.internal("interaction_merge").text, rows=rows).consume()
            for chunk in _batches(target_rows):
                tx.run(queries.internal("interaction_targets_merge").text, rows=list(chunk)).consume()

        graph.write_transaction(work)
        counts["interactions"] += len(batch)
        counts["links"] += len(target_rows)
    return counts


def store_steering(graph: Graph, run: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Store a steering run: its Run node and one Steering node per (feature, alpha) linked to the feature.

    ``results``: records with ``layer``, ``feature`` (index), ``alpha`` and the ``STEERING`` statistics.
    """
    model, sae, run_id = run["model"], run["sae"], run["id"]
    store_run(graph, run)
    rows = []
    for record in results:
        feature = _feature(model, sae, record["layer"], record["feature"])
        properties = _declared(record, STEERING.properties, skip=("id", "feature")) | {
            "run": run_id, "feature": feature["uid"], "layer": feature["layer"]}
        rows.append(feature | {"id": steering_id(run_id, feature["uid"], record["alpha"]), "run": run_id,
                               "properties": properties})
    for batch in _batches(rows):
        graph.write(queries.internal("steering_merge").text, rows=list(batch))
    return {"steerings": len(rows)}


def store_results(graph: Graph, run: Mapping[str, Any], tables: Mapping[str, Any]) -> dict[str, int]:
    """Store the tables of an experiment results directory (``atlas.experiments.results``) by the run's kind.

    Tables may be pandas DataFrames (anything with ``to_dict("records")``) or lists of records.
    """
    apply_schema(graph)  # MERGE by id relies on the uniqueness constraints
    def records(name: str) -> list[Mapping[str, Any]]:
        table = tables[name]
        return table.to_dict("records") if hasattr(table, "to_dict") else list(table)

    if run.get("kind") == "ablation":
        return store_ablation(graph, run, records("sets"), records("targets"))
    if run.get("kind") == "steering":
        return store_steering(graph, run, records("results"))
    raise ValueError(f"unknown experiment kind {run.get('kind')!r}")


def load_result_rows(graph: Graph, nodes: Mapping[str, Sequence[Mapping[str, Any]]],
                     links: Mapping[str, Sequence[Mapping[str, Any]]]) -> int:
    """MERGE experiment results given as property maps (a release's tables): ``nodes`` {interactions, steering,
    runs}, then ``links`` {members, targets, steers} of {source, feature, properties}; return how many nodes."""
    if any(nodes.values()):
        graph.write(queries.internal("release_merge_experiment_nodes").text, **nodes)
        for start in range(0, max(map(len, links.values())), BATCH):
            graph.write(queries.internal("release_merge_experiment_links").text,
                        **{name: rows[start:start + BATCH] for name, rows in links.items()})
    return sum(map(len, nodes.values()))
