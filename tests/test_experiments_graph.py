"""Experiment results land in the real Neo4j graph, linked to their features, and a rerun never duplicates."""

from __future__ import annotations

import numpy as np
import pytest

import queries
from loaders.experiments import store_ablation, store_steering
from loaders.schema import feature_uid

pytestmark = pytest.mark.neo4j

RUN = {"id": "ablate-test", "kind": "ablation", "model": "tiny", "sae": "tinysae", "n_cells": 6,
       "thresholds": {"min_effect": 0.5, "tolerance": 0.1}, "status": "complete"}
SETS = [
    {"set_id": "S000", "selection": "explicit", "order": 2, "member_layers": [1, 2], "member_features": [3, 4],
     "target_layer": 3, "n_cells": 6, "n_targets": 2, "median_redundancy": 0.8, "fraction_subadditive": 0.5,
     "fraction_additive": 0.5, "fraction_superadditive": 0.0, "mean_abs_interaction": float("nan"),
     "redundancy_by_order": [1.0, 0.8]},
    {"set_id": "S001", "selection": "random", "order": 1, "member_layers": [1], "member_features": [3],
     "target_layer": 3, "n_cells": 6, "n_targets": 1, "redundancy_by_order": [float("nan")]},
]
TARGETS = [
    {"set_id": "S000", "target_layer": 3, "target_feature": 7, "full_d": 1.2, "redundancy": 0.7,
     "class": "subadditive"},
    {"set_id": "S000", "target_layer": 3, "target_feature": 8, "full_d": -0.9, "redundancy": 1.0, "class": "additive"},
    {"set_id": "S001", "target_layer": 3, "target_feature": 7, "full_d": 0.8, "redundancy": 1.0, "class": "additive"},
]
STEER_RUN = {"id": "steer-test", "kind": "steering", "model": "tiny", "sae": "tinysae", "n_cells": 6}
STEERINGS = [
    {"layer": 1, "feature": 3, "alpha": alpha, "mean_ds": 0.01 * (alpha - 1), "fraction_positive": 0.8,
     "top_up": ["GENE1", "GENE2"], "top_down": ["GENE3"], "n_cells": 6}
    for alpha in (0.0, 2.0)
]


def _counts(graph) -> tuple[dict[str, int], dict[str, int]]:
    """Nodes per label and relationships per type."""
    nodes = graph.read("MATCH (n) RETURN labels(n)[0] AS name, count(*) AS n")
    links = graph.read("MATCH ()-[r]->() RETURN type(r) AS name, count(*) AS n")
    return ({row["name"]: row["n"] for row in nodes}, {row["name"]: row["n"] for row in links})


def test_ablation_results_are_linked_to_member_and_target_features(clean_graph):
    store_ablation(clean_graph, RUN, SETS, TARGETS)
    members = clean_graph.read(
        "MATCH (i:Interaction {id: 'ablate-test/S000'})-[m:HAS_MEMBER]->(f:Feature) "
        "RETURN f.uid AS uid, f.layer AS layer, m.position AS position ORDER BY position")
    assert [(row["uid"], row["layer"]) for row in members] == [
        (feature_uid("tiny", "tinysae", 1, 3), 1), (feature_uid("tiny", "tinysae", 2, 4), 2)]
    targets = clean_graph.read(
        "MATCH (:Interaction {id: 'ablate-test/S000'})-[t:INTERACTS_ON]->(f:Feature) "
        "RETURN f.index AS index, t.class AS class, t.run AS run ORDER BY index")
    assert targets == [{"index": 7, "class": "subadditive", "run": "ablate-test"},
                       {"index": 8, "class": "additive", "run": "ablate-test"}]
    node = clean_graph.read("MATCH (i:Interaction {id: 'ablate-test/S000'}) RETURN i")[0]["i"]
    assert node["order"] == 2 and node["run"] == "ablate-test" and "mean_abs_interaction" not in node
    run = clean_graph.read("MATCH (r:Run {id: 'ablate-test'}) RETURN r.kind AS kind, r.thresholds AS t")[0]
    assert run["kind"] == "ablation" and '"min_effect": 0.5' in run["t"]


def test_rerunning_an_ablation_store_creates_no_duplicates(clean_graph):
    store_ablation(clean_graph, RUN, SETS, TARGETS)
    before = _counts(clean_graph)
    changed = [dict(TARGETS[0], redundancy=0.5)] + TARGETS[2:]
    store_ablation(clean_graph, RUN, SETS, changed)
    store_ablation(clean_graph, RUN, SETS, changed)
    after = _counts(clean_graph)
    assert after[0] == before[0] == {"Run": 1, "Interaction": 2, "Feature": 4}
    assert after[1] == {"HAS_MEMBER": 3, "INTERACTS_ON": 2}
    assert clean_graph.read("MATCH ()-[t:INTERACTS_ON]->(:Feature {index: 7}) "
                            "WHERE t.redundancy = 0.5 RETURN count(t) AS n")[0]["n"] == 1


def test_steering_results_are_stored_per_feature_and_alpha_without_duplicates(clean_graph):
    store_steering(clean_graph, STEER_RUN, STEERINGS)
    store_steering(clean_graph, STEER_RUN, STEERINGS)
    rows = clean_graph.read("MATCH (s:Steering)-[:STEERS]->(f:Feature) "
                            "RETURN f.uid AS uid, s.alpha AS alpha, s.top_up AS up ORDER BY alpha")
    assert [(row["uid"], row["alpha"]) for row in rows] == [
        (feature_uid("tiny", "tinysae", 1, 3), 0.0), (feature_uid("tiny", "tinysae", 1, 3), 2.0)]
    assert rows[0]["up"] == ["GENE1", "GENE2"]
    assert clean_graph.read("MATCH (f:Feature) RETURN count(f) AS n")[0]["n"] == 1


def test_report_sections_show_experiments_on_the_scopes_model_and_mark_hubs(clean_graph):
    from atlas.analysis.scope import Scope
    from atlas.experiment_sections import ablation_section, steering_section
    from atlas.report_section import ReportContext

    store_ablation(clean_graph, RUN, SETS, TARGETS)
    store_steering(clean_graph, STEER_RUN, STEERINGS)
    uid = feature_uid("tiny", "tinysae", 1, 3)
    clean_graph.write("CREATE (:Run {id: 'trace-1', kind: 'trace', model: 'tiny', sae: 'tinysae', visible: [1]}) "
                      "CREATE (:Run {id: 'trace-2', kind: 'trace', model: 'other', sae: 'tinysae'}) WITH 1 AS one "
                      "MATCH (f:Feature {uid: $uid}), (g:Feature {index: 7}) "
                      "CREATE (f)-[:AFFECTS {run: 'trace-1', shard: 1, d: 1.0}]->(g)", uid=uid)
    context = ReportContext(clean_graph, Scope(("trace-1",)))
    ablation = ablation_section(context)
    assert ablation.tables[0][1].set_index("selection").loc["explicit", "median_redundancy"] == 0.8
    orders = ablation.tables[1][1]
    assert orders[orders["selection"] == "explicit"]["order"].tolist() == [1, 2]
    steering = steering_section(context)
    strongest = steering.tables[1][1]
    assert set(strongest["out_degree"]) == {1} and set(strongest["alpha"]) == {0.0, 2.0}
    assert len(steering.figures) == 1 and len(ablation.figures) == 1
    other = ReportContext(clean_graph, Scope(("trace-2",)))
    assert ablation_section(other) is None and steering_section(other) is None


def test_library_queries_answer_redundancy_and_direction_of_a_feature(clean_graph):
    store_ablation(clean_graph, RUN, SETS, TARGETS)
    store_steering(clean_graph, STEER_RUN, STEERINGS)
    uid = feature_uid("tiny", "tinysae", 1, 3)
    clean_graph.write("CREATE (:Run {id: 'trace-1', kind: 'trace', visible: [1]}) WITH 1 AS one "
                      "MATCH (f:Feature {uid: $uid}), (g:Feature {index: 7}) "
                      "CREATE (f)-[:AFFECTS {run: 'trace-1', shard: 1, d: 1.0}]->(g)", uid=uid)
    redundancy = queries.get("feature_redundancy")
    rows = clean_graph.read(redundancy.text, **redundancy.bind({"uid": uid}))
    assert [row["interaction"] for row in rows] == ["ablate-test/S001", "ablate-test/S000"]
    hubs = queries.get("hub_steering")
    rows = clean_graph.read(hubs.text, **hubs.bind({"run": "trace-1"}))
    assert [(row["uid"], row["alpha"], row["direction"]) for row in rows] == [
        (uid, 0.0, "toward early"), (uid, 2.0, "toward late")]


@pytest.fixture(scope="module")
def tiny_atlas(tiny_inputs):
    """The tiny inputs and the two most frequent features of each SAE layer 1-3."""
    from atlas.catalog import read_catalogs

    frequent = {layer: [f.index for f in sorted(catalog.features, key=lambda f: -f.activation_freq)[:2]]
                for layer, catalog in read_catalogs(tiny_inputs / "saes").items() if layer in (1, 2, 3)}
    return tiny_inputs, frequent


def _invoke(args: list[str]):
    from click.testing import CliRunner

    from atlas.cli import cli

    return CliRunner().invoke(cli, args, catch_exceptions=True)


def _inputs(root) -> list[str]:
    return ["--model", str(root / "model"), "--saes", str(root / "saes"), "--cells", str(root / "cells"),
            "--n-cells", "10", "--device", "cpu", "--quiet"]


def _experiment_counts(graph, run: str) -> dict[str, int]:
    return graph.read(
        "OPTIONAL MATCH (i:Interaction {run: $run}) WITH count(i) AS interactions "
        "OPTIONAL MATCH (:Interaction {run: $run})-[m:HAS_MEMBER]->() WITH interactions, count(m) AS members "
        "OPTIONAL MATCH (:Interaction {run: $run})-[t:INTERACTS_ON]->() "
        "WITH interactions, members, count(t) AS targets "
        "OPTIONAL MATCH (s:Steering {run: $run}) WITH interactions, members, targets, count(s) AS steerings "
        "MATCH (f:Feature) RETURN interactions, members, targets, steerings, count(f) AS features", run=run)[0]


def test_atlas_ablate_stores_interactions_and_a_rerun_creates_no_duplicates(clean_graph, tiny_atlas, tmp_path):
    import json

    root, frequent = tiny_atlas
    args = ["ablate", *_inputs(root), "--set", f"1:{frequent[1][0]},2:{frequent[2][0]}", "--select", "random",
            "--layers", "1,2", "--order", "3", "--n-sets", "2", "--min-frequency", "0", "--out", str(tmp_path / "a"),
            "--plot", str(tmp_path / "redundancy.png"), "--json"]
    result = _invoke(args)
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    run = output["run"]["id"]
    assert [row["order"] for row in output["sets"]] == [2, 3, 3]
    assert {row["order"] for row in output["orders"]} == {1, 2, 3}
    assert (tmp_path / "redundancy.png").stat().st_size > 0
    first = _experiment_counts(clean_graph, run)
    assert first["interactions"] == 3 and first["members"] == 8
    assert first["targets"] == sum(row["n_targets"] for row in output["sets"])
    assert {row["definition"] for row in output["sets"]} == {"study"}
    stored = clean_graph.read("MATCH (i:Interaction {run: $run}) RETURN DISTINCT i.definition AS d", run=run)
    assert stored == [{"d": "study"}]
    assert output["run"]["thresholds"]["definition"] == "study" and output["run"]["thresholds"]["active"] == "topk"
    assert _invoke(args).exit_code == 0
    assert _invoke(["ablate", "--load", str(tmp_path / "a"), "--json"]).exit_code == 0
    assert _experiment_counts(clean_graph, run) == first


def test_atlas_steer_stores_one_steering_per_feature_and_alpha(clean_graph, tiny_atlas, tmp_path):
    import json

    root, _ = tiny_atlas
    # The earlier protocol (every cell steered, extreme groups): with ten cells, the strongest switch features here
    # can be active only outside the early tertile, and the study's protocol would then steer no cell.
    args = ["steer", *_inputs(root), "--layers", "1,2", "--switch-threshold", "0", "--max-features", "2",
            "--alpha", "0", "--alpha", "2", "--root", "dc1-min", "--neighbors", "5", "--groups", "extremes",
            "--extreme-fraction", "0.3", "--steer-cells", "all", "--spread", "sample",
            "--out", str(tmp_path / "s"), "--plot", str(tmp_path / "steer.svg"), "--json"]
    result = _invoke(args)
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert len(output["results"]) == 2 * 2 * 2
    protocol = output["run"]["thresholds"]
    assert (protocol["groups"], protocol["steer_cells"], protocol["spread"]) == ("extremes", "all", "sample")
    assert "embedding" in protocol["pseudotime"]  # tokenized cells carry no expression
    named = [gene for row in output["results"] for gene in row["top_up"] + row["top_down"]]
    assert named and all(gene.startswith("GENE") for gene in named)  # names from the SAE catalogs' top genes
    assert {row["layer"] for row in output["layers"]} <= {1, 2}
    counts = _experiment_counts(clean_graph, output["run"]["id"])
    assert counts["steerings"] == 8
    assert _invoke(args).exit_code == 0
    assert _experiment_counts(clean_graph, output["run"]["id"]) == counts
    assert (tmp_path / "steer.svg").read_text().startswith("<?xml")


def test_a_bad_feature_set_is_a_one_line_error_and_leaves_the_graph_untouched(clean_graph, tiny_atlas, tmp_path):
    from atlas.errors import AtlasError

    root, _ = tiny_atlas
    result = _invoke(["ablate", *_inputs(root), "--set", "3:1", "--out", str(tmp_path / "bad")])
    assert isinstance(result.exception, AtlasError)
    assert "not before the target layer 3" in str(result.exception)
    assert clean_graph.read("MATCH (n) RETURN count(n) AS n")[0]["n"] == 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--select", "random"], "automatic selection needs --layers"),
    ([], "no feature set"),
    (["--set", "1:1", "--target-layer", "7"], "no SAE for layer(s) [7]"),
])
def test_ablate_input_errors_are_one_line_messages(clean_graph, tiny_atlas, tmp_path, extra, message):
    from atlas.errors import AtlasError

    root, _ = tiny_atlas
    result = _invoke(["ablate", *_inputs(root), "--out", str(tmp_path / "x"), *extra])
    assert isinstance(result.exception, AtlasError) and message in str(result.exception)


def test_ablate_without_storing_writes_only_the_results_directory(clean_graph, tiny_atlas, tmp_path):
    from atlas.experiments.results import load_tables

    root, frequent = tiny_atlas
    result = _invoke(["ablate", *_inputs(root), "--set", f"1:{frequent[1][0]}", "--no-store",
                      "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    run, tables = load_tables(tmp_path / "a")
    assert run["kind"] == "ablation" and len(tables["sets"]) == 1
    assert clean_graph.read("MATCH (n) RETURN count(n) AS n")[0]["n"] == 0
    wrong = _invoke(["steer", "--load", str(tmp_path / "a")])
    assert "holds ablation results, not steering" in str(wrong.exception)


def test_steer_reads_a_pseudotime_column_and_a_root_group(clean_graph, tiny_atlas, tmp_path):
    import json

    import pandas as pd

    from atlas.errors import AtlasError

    root, frequent = tiny_atlas
    table = pd.DataFrame({"dpt": np.linspace(0, 1, 10), "cell_type": ["stem"] * 3 + ["mature"] * 7})
    table.to_csv(tmp_path / "obs.csv", index=False)
    base = ["steer", *_inputs(root), "--feature", f"2:{frequent[2][0]}", "--no-store", "--json", "--centered"]
    given = _invoke([*base, "--pseudotime", str(tmp_path / "obs.csv"), "--pseudotime-column", "dpt",
                     "--out", str(tmp_path / "given")])
    assert given.exit_code == 0, given.output
    thresholds = json.loads(given.stdout)["run"]["thresholds"]
    assert thresholds["pseudotime"].startswith("column dpt of") and thresholds["centered"] is True
    grouped = _invoke([*base, "--root", "group:stem", "--labels", str(tmp_path / "obs.csv"), "--neighbors", "5",
                       "--out", str(tmp_path / "grouped")])
    assert grouped.exit_code == 0, grouped.output
    pseudotime = pd.read_parquet(tmp_path / "grouped" / "pseudotime.parquet")
    assert pseudotime.loc[pseudotime["root"], "cell"].item() in (0, 1, 2)
    missing = _invoke([*base, "--pseudotime", str(tmp_path / "obs.csv"), "--out", str(tmp_path / "m")])
    assert isinstance(missing.exception, AtlasError) and "no column 'pseudotime'" in str(missing.exception)
    np.save(tmp_path / "short.npy", np.arange(3.0))
    short = _invoke([*base, "--pseudotime", str(tmp_path / "short.npy"), "--out", str(tmp_path / "s")])
    assert "has 3 values for 10 cells" in str(short.exception)


def test_ablation_writes_are_batched_by_links_without_splitting_a_set():
    from loaders.experiments import _set_batches

    rows = [{"set_id": name} for name in "abcde"]
    links = {"a": [0] * 15, "b": [0] * 15, "c": [0] * 3, "d": [], "e": [0] * 30}
    assert [[r["set_id"] for r in batch] for batch in _set_batches(rows, links, max_targets=20)] == [
        ["a"], ["b", "c", "d"], ["e"]]
    assert [[r["set_id"] for r in batch] for batch in _set_batches(rows, links, max_sets=2, max_targets=20)] == [
        ["a"], ["b", "c"], ["d"], ["e"]]
