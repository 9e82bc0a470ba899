"""The demo path end to end at a tiny size: real PBMCs -> model -> SAEs -> annotation -> trace -> Neo4j -> report."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from urllib.parse import quote

import pytest
import torch
from click.testing import CliRunner

from atlas.cli import cli
from atlas.db import server
from atlas.demo.data import write_demo_data
from atlas.demo.pipeline import DemoSizes, markers_gmt, run_demo
from atlas.demo.summary import next_steps
from atlas.gmt import read_gmt
from tests.cli import ATLAS, atlas_env
from tests.explorer import free_port, strict_loads


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


def _answer(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()
    except OSError:  # not listening yet (URLError), or an HTTP error
        return None


@pytest.mark.neo4j
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_serve_keeps_the_explorer_running_until_stopped(clean_graph, tmp_path_factory, stop):
    home = tmp_path_factory.getbasetemp() / "demo-serve"  # shared by both signals: the second reuses model and SAEs
    config = server.ServerConfig.from_env()
    pid_before = server.running_pid(config)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("demo-serve-log")
    with open(log / "stdout", "w") as stdout, open(log / "stderr", "w") as stderr:
        process = subprocess.Popen([*ATLAS, "demo", "--tiny", "--no-start", "--serve", "--port", str(port), "--home",
                                    str(home)], stdout=stdout, stderr=stderr, env=atlas_env(OMP_NUM_THREADS="1"))
        try:
            deadline = time.monotonic() + 600
            while (runs := _answer(url + "/api/runs")) is None:
                assert process.poll() is None, (log / "stderr").read_text()[-2000:]
                assert time.monotonic() < deadline, "the explorer did not answer /api/runs"
                time.sleep(1)
            run_id = strict_loads(runs)[0]["id"]
            hub = strict_loads(_answer(f"{url}/api/runs/{quote(run_id, safe='')}/hubs?top=1"))[0]["uid"]
            page = _answer(f"{url}/features/{quote(hub, safe='/')}")
            assert page is not None and f'<h1 id="feature-uid">{hub}</h1>' in page
            process.send_signal(stop)
            assert process.wait(timeout=60) == 0, (log / "stderr").read_text()[-2000:]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert f"atlas serve --port {port} --reports" in (log / "stdout").read_text()
    assert _answer(url + "/api/runs") is None  # the explorer is gone with it
    assert server.running_pid(config) == pid_before is not None  # the managed server runs on, untouched
    assert clean_graph.read("MATCH (r:Run {id: $run}) RETURN r.status AS status", run=run_id)[0]["status"]
