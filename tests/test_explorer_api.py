"""The explorer's JSON API and pages against the real Neo4j + GDS server: every endpoint, values equal to the
library queries and analyses, pagination, filters, strict JSON and bad input."""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from urllib.parse import quote

import pandas as pd
import pytest

import queries
from atlas.analysis.hubs import hubs as hub_analysis
from atlas.analysis.scope import resolve_scope
from tests.explorer import ExplorerServer, build_explorer_atlas, strict_loads
from tests.graphs import uid

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def toy(graph):
    return build_explorer_atlas(graph)


@pytest.fixture(scope="module")
def explorer(toy):
    with ExplorerServer() as server:
        yield server


def path(value: str) -> str:
    return quote(value, safe="/:")


def library(graph, name: str, **parameters) -> pd.DataFrame:
    named = queries.get(name)
    bound = {key: parameters.get(key, parameter.default) for key, parameter in named.parameters.items()}
    return pd.DataFrame(graph.read(named.text, **bound))


def test_runs_lists_every_run_with_its_layers_and_shards(explorer):
    runs = {run["id"]: run for run in explorer.json("/api/runs")}
    assert set(runs) == {"toy", "chain-a", "chain-b"}
    assert runs["toy"]["source_layer"] == 5 and runs["toy"]["downstream_layers"] == [6, 11]
    assert runs["toy"]["visible_shards"] == 1


def test_run_document_counts_edges_and_attenuation_like_the_library(explorer, toy, graph):
    run, _ = toy
    document = explorer.json("/api/runs/toy")
    assert document["degrees"]["edges"] == len(run.edges)
    assert document["degrees"]["source_features"] == run.edges["source"].nunique()
    assert sum(item["features"] for item in document["histogram"]) == run.edges["source"].nunique()
    expected = library(graph, "attenuation_counts", runs=["toy"])
    assert document["attenuation"] == expected.to_dict(orient="records")


def test_hubs_have_the_hubs_query_degrees_and_the_hub_analysis_ranks(explorer, graph):
    found = explorer.json("/api/runs/toy/hubs?top=15")
    expected = library(graph, "hubs", run="toy", limit=15)
    assert [hub["out_degree"] for hub in found] == expected["out_degree"].tolist()
    analysis = hub_analysis(graph, resolve_scope(graph, ["toy"]), betweenness=False).tables["features"]
    ranks = analysis.set_index("uid")["hub_rank"]
    assert [hub["hub_rank"] for hub in found] == [int(ranks[hub["uid"]]) for hub in found] == list(range(1, 16))
    annotated = analysis.set_index("uid")["annotated"]
    assert all(hub["annotated"] == bool(annotated[hub["uid"]]) for hub in found)


def test_unannotated_hubs_keep_the_ranking_without_annotated_features(explorer):
    every = explorer.json("/api/runs/toy/hubs?top=60")
    unannotated = explorer.json("/api/runs/toy/hubs?top=5&unannotated=true")
    assert unannotated == [hub for hub in every if not hub["annotated"]][:5]
    assert len(unannotated) == 5


def test_feature_document_has_degrees_rank_percentile_terms_genes_and_experiments(explorer, toy):
    run, hub = toy
    document = explorer.json(f"/api/features/{path(hub)}")
    degrees = run.edges.groupby("source").size()
    [toy_run] = [row for row in document["runs"] if row["run"] == "toy"]
    assert toy_run["out_degree"] == degrees[hub] and toy_run["in_degree"] == 0
    assert toy_run["hub_rank"] == 1 and toy_run["percentile"] == 100.0
    features = run.features.set_index("uid")
    assert [gene["symbol"] for gene in document["top_genes"]] == features.loc[hub, "top_genes"]
    assert bool(document["terms"]) == bool(features.loc[hub, "annotated"])
    assert document["steering"][0]["mean_ds"] == 0.25
    assert document["interactions"][0]["interaction"] == "set-1"
    target = run.edges["target"].iloc[0]
    upstream = explorer.json(f"/api/features/{path(target)}")["runs"]
    assert [(row["run"], row["in_degree"]) for row in upstream] == [("toy", int((run.edges["target"] == target).sum()))]


def test_percentile_is_the_share_of_sources_with_at_most_this_out_degree(explorer, toy):
    run, _ = toy
    degrees = run.edges.groupby("source").size()
    median_source = degrees.sort_values().index[len(degrees) // 2]
    [row] = [row for row in explorer.json(f"/api/features/{path(median_source)}")["runs"] if row["run"] == "toy"]
    assert row["percentile"] == pytest.approx(100 * (degrees <= degrees[median_source]).mean())


def test_first_edge_page_equals_the_feature_edges_query(explorer, toy, graph):
    _, hub = toy
    expected = library(graph, "feature_edges", uid=hub, run="toy", limit=20)
    page = explorer.json(f"/api/features/{path(hub)}/edges?run=toy&limit=20")
    assert [edge["neighbour"] for edge in page["edges"]] == expected["target"].tolist()
    assert [edge["d"] for edge in page["edges"]] == expected["d"].tolist()
    assert page["total"] == graph.read("MATCH (:Feature {uid: $uid})-[e:AFFECTS {run: 'toy'}]->() "
                                       "RETURN count(e) AS n", uid=hub)[0]["n"]


def test_pages_of_edges_cover_every_edge_once_in_order(explorer, toy):
    run, hub = toy
    edges, offset = [], 0
    while True:
        page = explorer.json(f"/api/features/{path(hub)}/edges?limit=7&offset={offset}&sort=d&order=asc")
        edges += page["edges"]
        offset += 7
        if offset >= page["total"]:
            break
    mine = run.edges[run.edges["source"] == hub]
    assert sorted(edge["neighbour"] for edge in edges) == sorted(mine["target"])
    assert [edge["d"] for edge in edges] == sorted(mine["d"])


@pytest.mark.parametrize("query, keep", [
    ("layer=11", lambda edges: edges["target_layer"] == 11),
    ("sign=inhibitory", lambda edges: edges["d"] < 0),
    ("min_abs_d=1.5", lambda edges: edges["d"].abs() >= 1.5),
    ("layer=6&sign=excitatory&min_abs_d=1", lambda edges: (edges["target_layer"] == 6) & (edges["d"] >= 1)),
])
def test_edge_filters_keep_exactly_the_matching_edges(explorer, toy, query, keep):
    run, hub = toy
    mine = run.edges[run.edges["source"] == hub]
    page = explorer.json(f"/api/features/{path(hub)}/edges?{query}&limit=500")
    assert page["total"] == int(keep(mine).sum())
    assert sorted(edge["neighbour"] for edge in page["edges"]) == sorted(mine.loc[keep(mine), "target"])


def test_max_q_drops_edges_without_q_and_above_it(explorer, toy):
    _, hub = toy
    every = explorer.json(f"/api/features/{path(hub)}/edges?limit=500")
    kept = explorer.json(f"/api/features/{path(hub)}/edges?limit=500&max_q=0.05")
    assert kept["total"] == every["total"] - 1  # the toy edge whose q was removed


def test_upstream_edges_of_a_target_come_from_its_sources(explorer, toy):
    run, _ = toy
    target = run.edges["target"].value_counts().index[0]
    page = explorer.json(f"/api/features/{path(target)}/edges?direction=in&run=toy&limit=500")
    assert sorted(edge["neighbour"] for edge in page["edges"]) == sorted(run.edges.loc[run.edges["target"] == target,
                                                                                        "source"])


def test_neighbourhood_is_bounded_connected_and_keeps_the_strongest_first_hop_edges(explorer, toy):
    run, hub = toy
    graph_view = explorer.json(f"/api/features/{path(hub)}/neighbourhood?run=toy&hops=2&limit=30")
    edges, nodes = graph_view["edges"], {node["uid"]: node for node in graph_view["nodes"]}
    assert 0 < len(edges) <= 30 and nodes[hub]["center"]
    assert {end for edge in edges for end in (edge["source"], edge["target"])} | {hub} == set(nodes)
    first = {edge["source"] if edge["target"] == hub else edge["target"] for edge in edges if edge["hop"] == 1}
    assert all(edge["hop"] == 1 or {edge["source"], edge["target"]} & first for edge in edges)
    assert any(edge["hop"] == 2 for edge in edges)
    one_hop = explorer.json(f"/api/features/{path(hub)}/neighbourhood?run=toy&hops=1&limit=10")["edges"]
    mine = run.edges[run.edges["source"] == hub]
    assert sorted(abs(edge["d"]) for edge in one_hop) == pytest.approx(sorted(mine["d"].abs())[-10:])
    assert {node["layer"] for node in graph_view["nodes"]} <= {5, 6, 11}


def test_gene_term_and_search_find_what_the_graph_links(explorer, toy):
    run, hub = toy
    features = run.features.set_index("uid")
    gene = features.loc[hub, "top_genes"][0]
    by_symbol = explorer.json(f"/api/genes/{gene}")
    assert by_symbol["id"] == "ENSG" + gene and [f["uid"] for f in by_symbol["features"]] == [hub]
    assert explorer.json(f"/api/genes/ENSG{gene}")["symbol"] == gene
    annotated = features[features["annotated"]].index[0]
    term = explorer.json(f"/api/terms/{path('GO:' + features.loc[annotated, 'label'])}")
    assert [f["uid"] for f in term["features"]] == [annotated]
    found = explorer.json(f"/api/search?q={gene.lower()}")
    assert [g["symbol"] for g in found["genes"]] == [gene]
    found = explorer.json(f"/api/search?q={features.loc[annotated, 'label']}")
    assert annotated in [f["uid"] for f in found["features"]]
    assert "GO:" + features.loc[annotated, "label"] in [t["id"] for t in found["terms"]]


def test_non_finite_statistics_are_null_in_strict_json(explorer, toy):
    _, hub = toy
    page = explorer.json(f"/api/features/{path(hub)}/edges?limit=1")
    assert page["edges"][0]["std"] is None and page["edges"][0]["q"] is None
    assert all(value is None or math.isfinite(value) for edge in page["edges"] for value in edge.values()
               if isinstance(value, float))


@pytest.mark.parametrize("url, status, words", [
    ("/api/runs/nope", 404, "no run 'nope'"),
    ("/api/runs/nope/hubs", 404, "known runs"),
    ("/api/features/toy/sae4/L05/F9999", 404, "no feature"),
    ("/api/features/toy/sae4/L05/F9999/edges", 404, "no feature"),
    (f"/api/features/{uid(5, 0)}/edges?run=nope", 404, "no run"),
    (f"/api/features/{uid(5, 0)}/neighbourhood?hops=3", 422, "hops"),
    (f"/api/features/{uid(5, 0)}/neighbourhood?limit=100000", 422, "limit"),
    (f"/api/features/{uid(5, 0)}/edges?limit=501", 422, "limit"),
    (f"/api/features/{uid(5, 0)}/edges?direction=sideways", 422, "direction"),
    (f"/api/features/{uid(5, 0)}/edges?sign=maybe", 422, "sign"),
    (f"/api/features/{uid(5, 0)}/edges?min_abs_d=abc", 422, "min_abs_d"),
    ("/api/runs/toy/hubs?top=0", 422, "top"),
    ("/api/genes/NOTAGENE", 404, "no gene"),
    ("/api/terms/GO:none", 404, "no term"),
    ("/api/search?q=", 422, "q"),
    ("/api/search", 422, "q"),
    ("/api/nothing", 404, "Not Found"),
])
def test_bad_input_is_one_line_of_json_with_a_4xx_status(explorer, url, status, words):
    body = explorer.json(url, status=status)
    assert list(body) == ["error"] and words in body["error"] and "\n" not in body["error"]


def test_every_route_only_reads(explorer):
    schema = explorer.json("/openapi.json")
    assert {method for route in schema["paths"].values() for method in route} == {"get"}
    request = urllib.request.Request(explorer.url + "/api/runs", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 405 and list(strict_loads(refused.value.read().decode())) == ["error"]


def test_openapi_documents_every_endpoint_and_its_field_names(explorer):
    schema = explorer.json("/openapi.json")
    assert set(schema["paths"]) == {
        "/api/runs", "/api/runs/{run}", "/api/runs/{run}/hubs", "/api/features/{uid}", "/api/features/{uid}/edges",
        "/api/features/{uid}/neighbourhood", "/api/genes/{gene_id}", "/api/terms/{term_id}", "/api/search"}
    components = schema["components"]["schemas"]
    feature_fields = set(components["FeatureDocument"]["properties"])
    assert {"runs", "top_genes", "terms", "interactions", "steering"} <= feature_fields
    assert {"total", "edges"} <= set(components["EdgePage"]["properties"])
    assert explorer.get("/docs")[0] == 200


@pytest.mark.parametrize("page, words", [
    ("/", ["toy", "chain-a"]),
    ("/runs/toy", ["Hubs", "Attenuation", "unannotated hub"]),
    ("/search?q=G5_0_0", ["G5_0_0"]),
])
def test_pages_render_without_javascript(explorer, page, words):
    code, content_type, body = explorer.get(page)
    assert code == 200 and content_type.startswith("text/html")
    assert all(word in body for word in words)


def test_feature_gene_and_term_pages_link_their_neighbours(explorer, toy):
    run, hub = toy
    code, _, body = explorer.get(f"/features/{path(hub)}?run=toy&sort=d&order=asc")
    strongest = run.edges[run.edges["source"] == hub].sort_values("d")["target"].iloc[0]
    assert code == 200 and f'href="/features/{strongest}"' in body and "Trajectory steering" in body
    gene = run.features.set_index("uid").loc[hub, "top_genes"][0]
    code, _, body = explorer.get(f"/genes/{gene}")
    assert code == 200 and f'href="/features/{hub}"' in body


def test_an_unknown_page_is_an_html_404(explorer):
    code, content_type, body = explorer.get("/features/toy/sae4/L05/F9999")
    assert code == 404 and content_type.startswith("text/html") and "no feature" in body


def test_calibrated_edges_carry_their_permutation_p_and_q_and_sort_by_perm_q(explorer, toy):
    run, hub = toy
    page = explorer.json(f"/api/features/{path(hub)}/edges?direction=out&sort=perm_q&order=asc&limit=500")
    values = [edge["perm_q"] for edge in page["edges"]]
    assert len(values) == (run.edges["source"] == hub).sum() and values == sorted(values)
    assert all(edge["perm_p"] == pytest.approx(abs(edge["d"]) / 100) for edge in page["edges"])


def test_runs_say_whether_they_are_calibrated(explorer):
    runs = {run["id"]: run["calibrated"] for run in explorer.json("/api/runs")}
    assert runs == {"toy": True, "chain-a": False, "chain-b": False}


def test_max_q_bounds_the_permutation_q_when_asked(explorer, toy):
    run, hub = toy
    mine = run.edges[run.edges["source"] == hub]
    bound = float((mine["d"].abs() / 50).median())
    page = explorer.json(f"/api/features/{path(hub)}/edges?q_column=perm_q&max_q={bound}&limit=500")
    assert page["total"] == int((mine["d"].abs() / 50 <= bound).sum()) < len(mine)
    assert all(edge["perm_q"] <= bound for edge in page["edges"])


def test_the_perm_q_column_and_filter_show_only_where_a_run_in_view_is_calibrated(explorer, toy):
    _, hub = toy
    for query, calibrated in (("?run=toy", True), ("", True), ("?run=chain-a", False)):
        code, _, body = explorer.get(f"/features/{path(hub)}{query}")
        assert code == 200
        assert ("sort=perm_q" in body) is calibrated and ('name="q_column"' in body) is calibrated, query
