"""The analysts' workbench on the real Neo4j + GDS: atlas.connect(), fenced projections through the graphdatascience
client, `atlas gds`, circuit modules and target-overlap similarity, each checked against an independent computation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import comb
from scipy.stats import spearmanr

import atlas
from atlas.analysis.algorithms import run_algorithm
from atlas.analysis.projection import check_memory, projection_names
from atlas.analysis.scope import resolve_scope
from atlas.cli import cli
from atlas.errors import AtlasError
from atlas.runformat import read_manifest
from benchmarks.synthetic import make_synthetic_run
from loaders.digest import graph_digest
from loaders.online import ingest_run
from loaders.schema import feature_uid, shard_key
from tests.graphs import feature_table, uid, write_features, write_run
from tests.test_analysis import chain_network, gds_pagerank

pytestmark = pytest.mark.neo4j


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as JavaScript's JSON.parse does."""
    def refuse(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


def atlas_cli(*arguments: str) -> subprocess.CompletedProcess:
    """Run `atlas ...` through the console entry point, as a user does (errors become one line on stderr)."""
    return subprocess.run([sys.executable, "-c", "from atlas.cli import main; main()", *arguments],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)


def atlas_json(*arguments: str) -> dict:
    """The strictly parsed --json output of a successful command (run in-process: faster)."""
    result = CliRunner().invoke(cli, [*arguments, "--json"])
    assert result.exit_code == 0, result.output
    return strict_json(result.stdout)


@pytest.fixture
def workbench(graph):
    # A second driver on the same server; the session fixture's connection stays open.
    with atlas.connect() as connected:
        yield connected


def test_import_atlas_stays_light_and_connect_is_lazy():
    code = "import sys, atlas; print('neo4j' in sys.modules, 'pandas' in sys.modules, callable(atlas.connect))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "False", "True"]


def test_edges_equal_the_run_shards(clean_graph, workbench, tmp_path):
    run_dir = make_synthetic_run(tmp_path / "L05", scale=0.002, seed=3, features_per_shard=1024)
    report = ingest_run(clean_graph, run_dir)
    manifest = read_manifest(run_dir)
    shards = pd.concat([pq.read_table(run_dir / record.file).to_pandas() for record in manifest.shards])
    expected = {(feature_uid(manifest.model, manifest.sae, row.source_layer, row.source_feature),
                 feature_uid(manifest.model, manifest.sae, row.target_layer, row.target_feature)):
                (pytest.approx(row.d), pytest.approx(row.q)) for row in shards.itertuples()}
    edges = workbench.edges(report.run_id)
    assert len(edges) == len(shards) == len(expected)
    assert {(row.source, row.target): (row.d, row.q) for row in edges.itertuples()} == expected
    strong = workbench.edges(report.run_id, layers=[6], min_abs_d=1.0, arrow=True)
    assert strong.num_rows == int(((shards["target_layer"] == 6) & (shards["d"].abs() >= 1.0)).sum())


def test_to_networkx_holds_every_edge_of_the_scope_with_its_statistics(toy, workbench):
    network = workbench.to_networkx("toy")
    assert network.number_of_edges() == len(toy.edges)
    first = toy.edges.iloc[0]
    assert network[first["source"]][first["target"]]["toy"]["d"] == pytest.approx(first["d"])
    assert network.nodes[first["target"]]["layer"] == first["target_layer"]


def test_runs_and_features_tables(toy, workbench):
    assert workbench.runs()["id"].tolist() == ["toy"]
    features = workbench.features("toy")
    assert set(features["uid"]) == set(toy.features["uid"])
    assert set(workbench.features(layers=11)["layer"]) == {11}


def test_project_holds_only_visible_shards_and_is_dropped_on_exit(toy, graph, workbench):
    hidden = toy.edges.head(7)
    graph.write("UNWIND $rows AS row MATCH (s:Feature {uid: row.source}) MATCH (t:Feature {uid: row.target}) "
                "CREATE (s)-[:AFFECTS {run: 'toy', shard: $key, d: row.d}]->(t)",
                rows=hidden[["source", "target", "d"]].to_dict(orient="records"), key=shard_key("toy", "unfinished"))
    with workbench.project("toy") as projection:
        assert projection.name() in projection_names(graph)
        assert projection.relationship_count() == len(toy.edges)
        assert projection.relationship_types() == ["AFFECTS"]
        assert projection.node_properties() == {"Feature": ["layer"]}
        pagerank = workbench.gds.page_rank.stream(projection)
        assert len(pagerank) == projection.node_count()
    assert projection_names(graph) == []


def test_project_is_dropped_on_error(toy, graph, workbench):
    with pytest.raises(ZeroDivisionError), workbench.project("toy", layers=[6]) as projection:
        assert projection.relationship_count() == int((toy.edges["target_layer"] == 6).sum())
        _ = 1 / 0
    assert projection_names(graph) == []


def test_gds_pagerank_equals_power_iteration_on_chained_runs(chain, graph):
    output = atlas_json("gds", "pageRank", "--run", "chain-a", "--run", "chain-b", "-c", "maxIterations=20")
    rows = output["tables"]["stream"]
    assert output["summary"]["projected_by"] == "native"  # the two runs hold every stored edge
    expected = gds_pagerank(chain_network(chain))
    assert len(rows) == len(expected)
    for row in rows:
        assert row["score"] == pytest.approx(expected[row["uid"]], rel=1e-4)
        assert row["layer"] == int(row["uid"].split("/L")[1][:2])
    assert projection_names(graph) == []


def test_gds_wcc_equals_scipy_weak_components(clean_graph):
    rng = np.random.default_rng(2)
    write_features(clean_graph, pd.concat([feature_table(layer, 9, rng) for layer in (1, 2)], ignore_index=True))
    # three islands: sources 0-2 -> targets 0-2, 3-5 -> 3-5, 6-8 -> 6-8
    pairs = [(s, t) for block in range(3) for s in range(3 * block, 3 * block + 3)
             for t in range(3 * block, 3 * block + 3) if rng.random() < 0.7 or s == t]
    edges = pd.DataFrame({"source": [uid(1, s) for s, _ in pairs], "target": [uid(2, t) for _, t in pairs],
                          "target_layer": 2, "d": 1.0})
    write_run(clean_graph, "islands", 1, [2], edges)
    rows = atlas_json("gds", "wcc", "--run", "islands")["tables"]["stream"]
    nodes = sorted(set(edges["source"]) | set(edges["target"]))
    index = {node: i for i, node in enumerate(nodes)}
    adjacency = coo_matrix((np.ones(len(edges)), ([index[s] for s in edges["source"]],
                                                  [index[t] for t in edges["target"]])), shape=(len(nodes),) * 2)
    count, labels = connected_components(adjacency, directed=True, connection="weak")
    found = {row["uid"]: row["componentId"] for row in rows}
    assert count == len(set(found.values())) == 3
    for a, b in combinations(nodes, 2):
        assert (found[a] == found[b]) == (labels[index[a]] == labels[index[b]])
    stats = atlas_json("gds", "wcc", "--run", "islands", "--mode", "stats")
    assert {"statistic": "component_count", "value": 3, "text": None} in stats["tables"]["stats"]


def test_gds_node_similarity_equals_jaccard_of_targets(toy):
    rows = atlas_json("gds", "nodeSimilarity", "--run", "toy", "-c", "topK=3")["tables"]["stream"]
    targets = toy.edges.groupby("source")["target"].apply(set).to_dict()

    def jaccard(a, b):
        return len(targets[a] & targets[b]) / len(targets[a] | targets[b])

    assert rows and {row["node1_uid"] for row in rows} == set(targets)
    for row in rows:
        assert row["similarity"] == pytest.approx(jaccard(row["node1_uid"], row["node2_uid"]), rel=1e-6)
    best = {}
    for row in rows:
        best[row["node1_uid"]] = max(best.get(row["node1_uid"], 0), row["similarity"])
    for source, value in best.items():
        assert value == pytest.approx(max(jaccard(source, other) for other in targets if other != source), rel=1e-6)


def test_atlas_gds_leaves_the_database_unchanged_and_no_projection(toy, graph):
    before = graph_digest(graph)
    atlas_json("gds", "pageRank", "--run", "toy")
    atlas_json("gds", "louvain", "--run", "toy", "--weighted", "-c", "relationshipWeightProperty=weight")
    atlas_json("gds", "degree", "--run", "toy", "--mode", "stats")
    assert atlas_cli("gds", "pageRank", "--run", "toy", "-c", "dampingFactor=7").returncode == 1
    assert graph_digest(graph) == before
    assert projection_names(graph) == []


def test_unknown_algorithm_key_or_value_is_one_line_listing_the_valid_ones(toy, graph):
    unknown = atlas_cli("gds", "pagerankk", "--run", "toy")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.count("\n") == 1 and "pageRank" in unknown.stderr and "leiden" in unknown.stderr
    key = atlas_cli("gds", "pageRank", "--run", "toy", "-c", "damping=0.5")
    assert key.returncode == 1
    assert key.stderr.count("\n") == 1 and "dampingFactor" in key.stderr and "maxIterations" in key.stderr
    value = atlas_cli("gds", "pageRank", "--run", "toy", "-c", "dampingFactor=7")
    assert value.returncode == 1 and value.stderr.count("\n") == 1 and "dampingFactor" in value.stderr
    assert projection_names(graph) == []


def test_algorithm_memory_estimate_refuses_a_run_that_does_not_fit(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    projection_bytes = check_memory(graph, scope).required_bytes
    with pytest.raises(AtlasError, match=r"running pageRank on scope toy needs about .* only 0 B is free"):
        run_algorithm(graph, scope, "pageRank", free_bytes=projection_bytes)
    assert projection_names(graph) == []


def test_gds_write_stores_the_node_result_on_the_features(toy, graph):
    output = atlas_json("gds", "pageRank", "--run", "toy", "--write", "toy_pagerank")
    assert output["summary"]["written"] == len(output["tables"]["stream"])
    stored = {row["uid"]: row["value"] for row in graph.read(
        "MATCH (f:Feature) WHERE f.toy_pagerank IS NOT NULL RETURN f.uid AS uid, f.toy_pagerank AS value")}
    assert stored == pytest.approx({row["uid"]: row["score"] for row in output["tables"]["stream"]})
    taken = atlas_cli("gds", "pageRank", "--run", "toy", "--write", "label")
    assert taken.returncode == 1 and "belongs to the graph model" in taken.stderr


def planted_partition(graph, blocks: int = 3, size: int = 8, inside: float = 0.8, across: float = 0.03):
    """Sources of layer 1 and targets of layer 2 in ``blocks`` groups, dense within a group and sparse across."""
    rng = np.random.default_rng(7)
    write_features(graph, pd.concat([feature_table(layer, blocks * size, rng) for layer in (1, 2)],
                                    ignore_index=True))
    pairs = [(s, t) for s in range(blocks * size) for t in range(blocks * size)
             if rng.random() < (inside if s // size == t // size else across)]
    edges = pd.DataFrame({"source": [uid(1, s) for s, _ in pairs], "target": [uid(2, t) for _, t in pairs],
                          "target_layer": 2, "d": rng.choice([-1, 1], len(pairs)) * rng.uniform(0.6, 2, len(pairs))})
    write_run(graph, "planted", 1, [2], edges)
    truth = {uid(layer, index): index // size for layer in (1, 2) for index in range(blocks * size)}
    return truth


def adjusted_rand_index(first: list, second: list) -> float:
    """Hubert-Arabie adjusted Rand index from the contingency table."""
    table = pd.crosstab(pd.Series(first), pd.Series(second)).to_numpy()
    pairs = comb(table, 2).sum()
    rows, columns = comb(table.sum(axis=1), 2).sum(), comb(table.sum(axis=0), 2).sum()
    expected = rows * columns / comb(table.sum(), 2)
    return float((pairs - expected) / ((rows + columns) / 2 - expected))


@pytest.mark.parametrize("algorithm", ["leiden", "louvain"])
def test_modules_recover_a_planted_partition(clean_graph, workbench, algorithm):
    truth = planted_partition(clean_graph)
    result = workbench.modules("planted", algorithm=algorithm, write=True)
    members = result.tables["members"]
    found = dict(zip(members["uid"], members["module"], strict=True))
    assert adjusted_rand_index([truth[key] for key in truth], [found[key] for key in truth]) >= 0.9
    assert result.table["size"].sum() == len(truth)
    assert all(layers == [1, 2] for layers in result.table["layers"])
    stored = {row["uid"]: row["module"] for row in clean_graph.read(
        "MATCH (f:Feature {module_scope: 'planted'}) RETURN f.uid AS uid, f.module AS module")}
    assert stored == found
    assert projection_names(clean_graph) == []


def test_module_terms_are_fisher_enriched_with_bh(clean_graph, workbench):
    truth = planted_partition(clean_graph)
    # every source of block 0 carries term T0, plus two features elsewhere
    carriers = [key for key, block in truth.items() if block == 0 and "/L01/" in key] + [uid(1, 20), uid(2, 20)]
    clean_graph.write("MERGE (t:Term {id: 'T0'}) SET t.name = 'block zero' WITH t UNWIND $uids AS uid "
                      "MATCH (f:Feature {uid: uid}) MERGE (f)-[:ENRICHED_IN]->(t)", uids=carriers)
    result = workbench.modules("planted")
    enrichment = result.tables["enrichment"]
    members = result.tables["members"]
    block_zero = members.loc[members["uid"] == uid(1, 0), "module"].item()
    row = enrichment[(enrichment["term"] == "T0") & (enrichment["module"] == block_zero)].iloc[0]
    module_size = int((members["module"] == block_zero).sum())
    from scipy.stats import fisher_exact

    overlap = int(row["overlap"])
    _, p_value = fisher_exact([[overlap, module_size - overlap],
                               [len(carriers) - overlap, len(members) - module_size - len(carriers) + overlap]],
                              alternative="greater")
    assert row["p"] == pytest.approx(p_value)
    assert "block zero" in result.table.set_index("module").loc[block_zero, "enriched_terms"]


def test_similarity_sets_target_overlap_beside_measured_redundancy(toy, graph, workbench):
    sources = sorted(toy.edges["source"].unique())
    sets = [sources[i:i + 3] for i in range(0, 15, 3)]
    redundancy = [0.9, 0.2, 0.5, 0.7, 0.1]
    graph.write("MERGE (r:Run {id: 'abl'}) SET r.kind = 'ablation', r.model = 'toy', r.sae = 'sae4'")
    graph.write("UNWIND $rows AS row CREATE (i:Interaction {id: row.id, run: 'abl', selection: 'random', order: 3, "
                "members: row.members, median_redundancy: row.redundancy})",
                rows=[{"id": f"set{i}", "members": members, "redundancy": value}
                      for i, (members, value) in enumerate(zip(sets, redundancy, strict=True))])
    result = workbench.similarity("toy", top_k=2)
    targets = toy.edges.groupby("source")["target"].apply(set).to_dict()
    expected = [np.mean([len(targets[a] & targets[b]) / len(targets[a] | targets[b])
                         for a, b in combinations(members, 2)]) for members in sets]
    ablation = result.tables["ablation"].sort_values("set_id")
    assert ablation["mean_jaccard"].tolist() == pytest.approx(expected)
    assert result.summary["spearman_rho"] == pytest.approx(spearmanr(expected, redundancy)[0])
    assert (result.table.groupby("uid").size() <= 2).all()


def test_every_new_json_output_is_strict(toy, tmp_path):
    for arguments in (["gds", "pageRank", "--run", "toy", "--out", str(tmp_path / "pr.csv")],
                      ["gds", "wcc", "--run", "toy", "--mode", "stats", "--out", str(tmp_path / "wcc.parquet")],
                      ["analyze", "modules", "--run", "toy", "--plot", str(tmp_path / "modules.png")],
                      ["analyze", "similarity", "--run", "toy", "--plot", str(tmp_path / "similarity.svg")]):
        output = atlas_json(*arguments)
        assert output["tables"]
    assert len(pd.read_csv(tmp_path / "pr.csv")) == 140
    assert "component_count" in set(pd.read_parquet(tmp_path / "wcc.parquet")["statistic"])
    assert (tmp_path / "modules.png").stat().st_size > 0 and (tmp_path / "similarity.svg").exists()


def test_help_has_an_example():
    for arguments in (["gds", "--help"], ["analyze", "modules", "--help"], ["analyze", "similarity", "--help"]):
        result = CliRunner().invoke(cli, arguments)
        assert result.exit_code == 0 and "Example" in result.output


def test_networkx_is_used_by_the_product_only_through_to_networkx():
    root = Path(__file__).resolve().parents[1]
    users = sorted(str(path.relative_to(root)) for folder in ("atlas", "loaders", "queries")
                   for path in (root / folder).rglob("*.py") if "import networkx" in path.read_text())
    assert users == ["atlas/workbench.py"]
    assert isinstance(nx.MultiDiGraph(), nx.MultiDiGraph)


def test_the_gds_client_follows_a_replaced_driver(graph):
    from atlas.db.connection import connect

    with connect(graph.settings) as own:
        before = own.gds
        fresh = connect(graph.settings)
        own.driver.close()
        own.driver = fresh.driver
        assert own.gds is not before and own.gds.run_cypher("RETURN 1 AS one")["one"].tolist() == [1]
