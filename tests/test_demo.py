"""The demo path end to end at a tiny size: real PBMCs -> model -> SAEs -> annotation -> trace -> Neo4j -> report."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from atlas.cli import cli
from atlas.demo.data import write_demo_data
from atlas.demo.pipeline import DemoSizes, markers_gmt, run_demo
from atlas.demo.summary import next_steps
from atlas.gmt import read_gmt


def test_bundled_pbmcs_become_geneformer_style_dictionaries(tmp_path):
    data = write_demo_data(tmp_path)
    tokens = json.loads(data.token_dictionary.read_text())
    medians = json.loads(data.gene_median_dictionary.read_text())
    assert data.n_cells == 700 and data.n_genes == len(medians) > 700
    assert [tokens[name] for name in ("<pad>", "<mask>", "<cls>", "<eos>")] == [0, 1, 2, 3]
    assert set(tokens) - {"<pad>", "<mask>", "<cls>", "<eos>"} == set(medians)
    assert all(value > 0 for value in medians.values())


def test_marker_gene_sets_name_their_sources():
    sets = read_gmt(markers_gmt())
    assert len(sets) >= 10
    assert all("Sources:" in gene_set.description for gene_set in sets)


@pytest.mark.neo4j
def test_tiny_demo_builds_a_populated_graph_and_a_report_and_a_rerun_reuses_the_model(clean_graph, tmp_path):
    torch.set_num_threads(1)
    result = CliRunner().invoke(cli, ["demo", "--tiny", "--no-start", "--home", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["model_trained"] and printed["saes_trained"] and len(printed["try"]) == 3
    first = run_demo(tmp_path, DemoSizes.tiny(), start_server=False, echo=lambda line: None)
    assert not first.model_trained and not first.saes_trained
    assert str(first.report) == printed["report"]
    assert first.report.is_file() and "<html" in first.report.read_text().lower()
    assert printed["explorer"] == {"command": f"atlas serve --reports {tmp_path / 'reports'}",
                                   "url": "http://127.0.0.1:8000/"}
    assert "href='http://127.0.0.1:8000/features/" in first.report.read_text()  # the report links the explorer
    counts = clean_graph.read(
        "MATCH (:Feature)-[e:AFFECTS {run: $run}]->(:Feature) RETURN count(e) AS edges", run=first.run_id)[0]
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    assert counts["edges"] == manifest["counts"]["edges"] > 0
    features = clean_graph.read(
        "MATCH (f:Feature {model: $model}) RETURN count(f) AS features, count {(f)-[:TOP_GENE]->()} > 0 AS genes, "
        "f.annotated = exists {(f)-[:ENRICHED_IN]->()} AS consistent", model=DemoSizes.tiny().model_name)
    assert sum(row["features"] for row in features) == 3 * 4 * 32  # every feature of the 3 layers' SAEs
    assert all(row["consistent"] for row in features) and any(row["genes"] for row in features)
    terms = clean_graph.read("MATCH (t:Term {source: 'markers'})<-[:MEMBER_OF]-(:Gene) RETURN count(DISTINCT t) AS n")
    assert terms[0]["n"] == len(read_gmt(markers_gmt()))
    assert printed["top_hub"]["uid"] == next_steps(first)["top_hub"]["uid"]
