"""Reports, plots and the `atlas analyze` / `atlas report` commands end to end on a small run."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from atlas import plots, report
from atlas.analysis.hubs import HubRule
from atlas.analysis.projection import projection_names
from atlas.analysis.scope import resolve_scope
from atlas.report_section import Section
from tests.cli import run_atlas
from tests.graphs import heavy_tailed_run

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def run(graph):
    from tests.conftest import wipe

    wipe(graph)
    return heavy_tailed_run(graph, "toy", np.random.default_rng(21), sources=80, targets=50)




def test_plots_draw_tables_without_a_database(tmp_path):
    features = pd.DataFrame({"uid": ["a/s/L05/F0001", "a/s/L05/F0002", "a/s/L06/F0001"], "layer": [5, 5, 6],
                             "out_degree": [3, 1, 0], "in_degree": [0, 0, 4], "degree": [3, 1, 4]})
    ccdf = pd.DataFrame({"direction": ["out", "out"], "degree": [1, 3], "ccdf": [1.0, 0.5]})
    figure = plots.degree_figure(features, ccdf)
    assert len(figure.axes) == 2
    path = plots.save(figure, tmp_path / "degrees.svg")
    assert path.read_text().lstrip().startswith("<?xml")


def test_report_is_self_contained_with_every_core_section_and_its_command(run, graph, tmp_path):
    scope = resolve_scope(graph, ["toy"])
    built = report.build_report(graph, scope, HubRule(threshold=None, percentile=90), top=10)
    paths = report.write_report(built, tmp_path)
    page = paths["html"].read_text()
    assert [section.key for section in built.sections] == ["summary", "degrees", "hubs", "unannotated-hubs",
                                                           "attenuation", "powerlaw", "bias", "modules"]
    sources = re.findall(r"src='([^']*)'", page)
    assert sources and all(source.startswith("data:image/png;base64,") for source in sources)
    assert "http" not in page.replace("http-equiv", "")
    for section in built.sections:
        assert section.command.startswith("atlas ") and section.command in page.replace("&#x27;", "'")
    assert "atlas report --run toy --percentile 90 --by out_degree --top 10 --out DIR" in page
    markdown = paths["markdown"].read_text()
    for figure in re.findall(r"\]\((figures/[^)]+)\)", markdown):
        assert (tmp_path / figure).is_file()
    assert projection_names(graph) == []


def test_report_hub_table_lists_the_hubs_computed_independently(run, graph, tmp_path):
    scope = resolve_scope(graph, ["toy"])
    built = report.build_report(graph, scope, HubRule(threshold=25), top=5)
    hubs = dict(built.sections[2].tables)["Hubs and top-ranked features"]
    degree = run.edges.groupby("source").size()
    assert set(hubs.query("hub")["uid"]) == set(degree[degree > 25].index)
    unannotated = dict(built.sections[3].tables)["Unannotated hubs with their top genes"]
    annotated = run.features.set_index("uid")["annotated"]
    assert set(unannotated["uid"]) == {uid for uid in degree[degree > 25].index if not annotated[uid]}


def test_given_section_builders_are_built_and_a_builder_returning_none_is_left_out(run, graph, tmp_path):
    table = pd.DataFrame({"feature": ["x"], "redundancy_ratio": [0.4]})

    def ablation(context):
        return Section("ablation", "Combinatorial ablation", "atlas ablate --help", tables=[("t", table)])

    builders = [*report.CORE_SECTIONS, ablation, lambda context: None]
    built = report.build_report(graph, resolve_scope(graph, ["toy"]), HubRule(threshold=25), builders=builders)
    assert [section.key for section in built.sections][-1] == "ablation"
    assert "redundancy_ratio" in report.write_report(built, tmp_path)["html"].read_text()


def test_analyze_hubs_cli_writes_the_table_plot_and_json(run, tmp_path):
    out, plot = tmp_path / "hubs.parquet", tmp_path / "hubs.png"
    done = run_atlas("analyze", "hubs", "--run", "toy", "--threshold", "25", "--out", str(out), "--plot", str(plot),
                 "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    degree = run.edges.groupby("source").size()
    assert data["summary"]["hubs"] == int((degree > 25).sum())
    table = pd.read_parquet(out)
    assert set(table.query("hub")["uid"]) == set(degree[degree > 25].index)
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_analyze_degrees_cli_writes_csv_of_the_summary(run, tmp_path):
    out = tmp_path / "degrees.csv"
    done = run_atlas("analyze", "degrees", "--run", "toy", "--layer", "11", "--out", str(out))
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(out).set_index(["direction", "layer"])
    expected = run.edges[run.edges["target_layer"] == 11].groupby("source").size()
    assert summary.loc[("out", "all"), "mean"] == pytest.approx(expected.mean())


@pytest.mark.parametrize(("args", "message"), [
    (("analyze", "degrees", "--run", "toy", "--out", "x.xlsx"), "--out must end in .parquet or .csv"),
    (("analyze", "hubs", "--run", "missing"), "no run 'missing'"),
    (("analyze", "hubs", "--run", "toy", "--percentile", "150"), "--percentile must be between 0 and 100"),
    (("analyze", "attenuation", "--run", "toy", "--layer", "3"), "layer 3 is not a downstream layer"),
])
def test_analyze_cli_errors_are_one_line_with_exit_1(run, args, message):
    done = run_atlas(*args)
    assert done.returncode == 1
    assert message in done.stderr and done.stderr.strip().count("\n") == 0


def test_report_cli_prints_the_paths(run, tmp_path):
    done = run_atlas("report", "--run", "toy", "--threshold", "25", "--out", str(tmp_path / "r"), "--json")
    assert done.returncode == 0, done.stderr
    paths = json.loads(done.stdout)
    assert (tmp_path / "r" / "report.html").samefile(paths["html"])
    assert "bias" in paths["sections"]


def test_report_links_every_feature_uid_to_its_explorer_page(run, graph, tmp_path):
    scope = resolve_scope(graph, ["toy"])
    built = report.build_report(graph, scope, HubRule(threshold=None, percentile=90), top=10)
    paths = report.write_report(built, tmp_path, explorer_url="http://127.0.0.1:8000/")
    page, markdown = paths["html"].read_text(), paths["markdown"].read_text()
    hub_uids = [uid for section in built.sections if section.key == "hubs"
                for _, table in section.tables if "uid" in table for uid in table["uid"].head(50)]
    assert hub_uids
    for uid in hub_uids:
        assert f"<a href='http://127.0.0.1:8000/features/{uid}'>{uid}</a>" in page
        assert f"[{uid}](http://127.0.0.1:8000/features/{uid})" in markdown
    unlinked = re.findall(r"<td>([^<>/]+/[^<>/]+/L\d+/F\d+)</td>", page)
    assert unlinked == []


def test_report_cli_refuses_an_explorer_url_that_is_not_http_in_one_line(tmp_path):
    result = run_atlas("report", "--run", "toy", "--out", tmp_path, "--explorer-url", "file:///etc")
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert "--explorer-url must start with http" in result.stderr
