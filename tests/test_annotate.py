"""Annotation loaders: GMT parsing, SAE catalogs and annotations into the real graph, idempotence, refusals."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from atlas.catalog import Annotation, CatalogFeature, LayerCatalog, TopGene, read_catalogs, write_layer_catalog
from atlas.errors import AtlasError
from atlas.gmt import gene_sets, library_name, read_gmt
from loaders.annotations import catalog_rows, gene_set_rows, load_annotations
from loaders.digest import graph_digest
from tests.cli import run_atlas

MODEL, SAE = "tiny-gf", "tiny-saes"
GMT = (
    "APOPTOSIS\thttp://example.org/apoptosis\tTP53\tBAX\tCASP3\n"
    "\n"
    "T_CELL\tT cell markers\tCD3E,1.0\tCD3D,0.5\tcd3e\t\t\n"   # weights dropped, empty trailing fields ignored
    "INTERFERON\t\tISG15\tIFIT1\r\n"
)


def write_gmt(tmp_path: Path, text: str, name: str = "hallmark.gmt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def build_sae_atlas(root: Path) -> Path:
    """Two layers of a tiny SAE atlas in the public layout: catalogs and annotations."""
    features = [
        CatalogFeature(0, 0.12, top_genes=[TopGene(11, "CD3E", 2.5), TopGene(12, "CD3D", 1.25)],
                       annotations=[Annotation("GO_BP", "T cell activation", 1e-6, 12.5, 2, ["CD3E", "CD3D"]),
                                    Annotation("KEGG", "TCR signaling", 0.003, 4.0, 1, ["CD3E"])]),
        CatalogFeature(1, 0.0005, top_genes=[TopGene(13, "TP53", 0.75)]),
        CatalogFeature(2, 0.0, is_dead=True),
        CatalogFeature(3, 0.2, top_genes=[TopGene(14, "ISG15", 1.0)],
                       annotations=[Annotation("edges", "dense module", extra={"n_edges": 7, "density": 0.4})]),
    ]
    write_layer_catalog(root / "layer05_x4_k32", LayerCatalog(5, 8, 4, features))
    write_layer_catalog(root / "layer06_x4_k32", LayerCatalog(
        6, 8, 4, [CatalogFeature(7, 0.3, top_genes=[TopGene(11, "CD3E", 0.5)],
                                 annotations=[Annotation("GO_BP", "T cell activation", 0.01, 3.0, 1, ["CD3E"])])]))
    return root


@pytest.fixture
def sae_atlas(tmp_path) -> Path:
    return build_sae_atlas(tmp_path / "saes")


def test_gmt_lines_become_gene_sets_with_their_line_numbers(tmp_path):
    sets = read_gmt(write_gmt(tmp_path, GMT))
    assert [(s.name, s.description, s.genes, s.line) for s in sets] == [
        ("APOPTOSIS", "http://example.org/apoptosis", ("TP53", "BAX", "CASP3"), 1),
        ("T_CELL", "T cell markers", ("CD3E", "CD3D", "cd3e"), 3),
        ("INTERFERON", "", ("ISG15", "IFIT1"), 4),
    ]


def test_gzipped_gmt_reads_the_same_and_names_its_library(tmp_path):
    path = tmp_path / "h.all.v2023.gmt.gz"
    path.write_bytes(gzip.compress(GMT.encode()))
    assert gene_sets(path) == gene_sets(write_gmt(tmp_path, GMT))
    assert library_name(path) == "h.all.v2023"


@pytest.mark.parametrize(("text", "message"), [
    ("OK\tdesc\tA\nBROKEN\tonly two fields\n", r"hallmark\.gmt:2: expected NAME<TAB>DESCRIPTION<TAB>GENE\.\.\., "
                                               r"found 2 tab-separated field"),
    ("OK\tdesc\tA\n\n\tdesc\tB\n", r"hallmark\.gmt:3: the gene set name \(first field\) is empty"),
    ("OK\tdesc\tA\nOK\tagain\tB\n", r"hallmark\.gmt:2: gene set 'OK' is already defined on line 1"),
    ("OK\tdesc\tA\nEMPTY\tdesc\t\t \n", r"hallmark\.gmt:2: gene set 'EMPTY' lists no genes"),
    ("\n\n", r"hallmark\.gmt: no gene sets"),
])
def test_malformed_gmt_lines_are_reported_with_file_and_line(tmp_path, text, message):
    with pytest.raises(AtlasError, match=message):
        read_gmt(write_gmt(tmp_path, text))


def test_non_utf8_gmt_line_is_reported(tmp_path):
    path = tmp_path / "latin.gmt"
    path.write_bytes(b"OK\tdesc\tA\nBAD\tdesc\tG\xe9NE\n")
    with pytest.raises(AtlasError, match=r"latin\.gmt:2: not UTF-8"):
        read_gmt(path)



def feature_properties(graph) -> dict[str, dict]:
    rows = graph.read("MATCH (f:Feature) RETURN f.uid AS uid, properties(f) AS properties")
    return {row["uid"]: row["properties"] for row in rows}


@pytest.mark.neo4j
def test_catalog_features_genes_and_terms_read_back(clean_graph, sae_atlas):
    load_annotations(clean_graph, catalog_rows(read_catalogs(sae_atlas).values(), MODEL, SAE))
    features = feature_properties(clean_graph)
    assert len(features) == 5
    first = features[f"{MODEL}/{SAE}/L05/F0000"]
    assert first == {"uid": f"{MODEL}/{SAE}/L05/F0000", "model": MODEL, "sae": SAE, "layer": 5, "index": 0,
                     "activation_freq": 0.12, "annotated": True, "label": "T cell activation"}
    assert features[f"{MODEL}/{SAE}/L05/F0001"]["annotated"] is False
    assert "label" not in features[f"{MODEL}/{SAE}/L05/F0001"]
    assert features[f"{MODEL}/{SAE}/L05/F0003"]["label"] == "edges:dense module"

    top = clean_graph.read("MATCH (f:Feature)-[t:TOP_GENE]->(g:Gene) RETURN f.uid AS uid, g.id AS gene, "
                           "g.symbol AS symbol, t.rank AS rank, t.weight AS weight ORDER BY uid, rank")
    assert [(row["uid"][-9:], row["gene"], row["rank"], row["weight"]) for row in top] == [
        ("L05/F0000", "CD3E", 1, 2.5), ("L05/F0000", "CD3D", 2, 1.25), ("L05/F0001", "TP53", 1, 0.75),
        ("L05/F0003", "ISG15", 1, 1.0), ("L06/F0007", "CD3E", 1, 0.5)]
    enriched = clean_graph.read("MATCH (f:Feature)-[e:ENRICHED_IN]->(t:Term) RETURN f.uid AS uid, t.id AS term, "
                                "t.name AS name, t.source AS source, e.p_adj AS p_adj, e.odds_ratio AS odds, "
                                "e.n_overlap AS overlap ORDER BY uid, term")
    assert [(row["uid"][-9:], row["term"], row["source"], row["p_adj"], row["odds"], row["overlap"])
            for row in enriched] == [
        ("L05/F0000", "GO_BP:T cell activation", "GO_BP", 1e-6, 12.5, 2),
        ("L05/F0000", "KEGG:TCR signaling", "KEGG", 0.003, 4.0, 1),
        ("L05/F0003", "edges:dense module", "edges", None, None, None),
        ("L06/F0007", "GO_BP:T cell activation", "GO_BP", 0.01, 3.0, 1)]


@pytest.mark.neo4j
def test_gene_sets_share_gene_nodes_with_catalog_top_genes(clean_graph, sae_atlas, tmp_path):
    load_annotations(clean_graph, catalog_rows(read_catalogs(sae_atlas).values(), MODEL, SAE))
    load_annotations(clean_graph, gene_set_rows(read_gmt(write_gmt(tmp_path, GMT)), "hallmark"))
    members = clean_graph.read("MATCH (g:Gene)-[:MEMBER_OF]->(t:Term {id: 'hallmark:T_CELL'}) "
                               "RETURN g.id AS gene, g.symbol AS symbol ORDER BY gene")
    assert members == [{"gene": "CD3D", "symbol": "CD3D"}, {"gene": "CD3E", "symbol": "CD3E"}]
    term = clean_graph.read("MATCH (t:Term {id: 'hallmark:APOPTOSIS'}) RETURN properties(t) AS p")[0]["p"]
    assert term == {"id": "hallmark:APOPTOSIS", "name": "APOPTOSIS", "source": "hallmark",
                    "description": "http://example.org/apoptosis"}
    # A feature reaches a gene set through its top genes: the join analysts need.
    reached = clean_graph.read("MATCH (f:Feature)-[:TOP_GENE]->(:Gene)-[:MEMBER_OF]->(t:Term {source: 'hallmark'}) "
                               "RETURN DISTINCT f.uid AS uid, t.name AS term ORDER BY uid, term")
    assert [(row["uid"][-9:], row["term"]) for row in reached] == [
        ("L05/F0000", "T_CELL"), ("L05/F0001", "APOPTOSIS"), ("L05/F0003", "INTERFERON"), ("L06/F0007", "T_CELL")]


@pytest.mark.neo4j
def test_reloading_annotations_changes_nothing(clean_graph, sae_atlas, tmp_path):
    rows = catalog_rows(read_catalogs(sae_atlas).values(), MODEL, SAE).merge(
        gene_set_rows(read_gmt(write_gmt(tmp_path, GMT)), "hallmark"))
    first = load_annotations(clean_graph, rows)
    before = graph_digest(clean_graph)
    again = load_annotations(clean_graph, rows)
    assert first["nodes_created"] > 0 and first["relationships_created"] > 0
    assert again.get("nodes_created", 0) == 0 and again.get("relationships_created", 0) == 0
    assert graph_digest(clean_graph) == before


@pytest.mark.neo4j
def test_a_new_gene_set_library_touches_nothing_else(clean_graph, sae_atlas, tmp_path):
    load_annotations(clean_graph, catalog_rows(read_catalogs(sae_atlas).values(), MODEL, SAE))
    features_before = feature_properties(clean_graph)
    relationships_before = graph_digest(clean_graph)["relationships"]
    load_annotations(clean_graph, gene_set_rows(read_gmt(write_gmt(tmp_path, GMT)), "hallmark"))
    assert feature_properties(clean_graph) == features_before
    after = graph_digest(clean_graph)["relationships"]
    assert {key: value for key, value in after.items() if key != "MEMBER_OF"} == relationships_before


@pytest.mark.neo4j
def test_a_changed_catalog_or_gene_set_replaces_its_links_and_touches_nothing_else(clean_graph, sae_atlas, tmp_path):
    load_annotations(clean_graph, catalog_rows(read_catalogs(sae_atlas).values(), MODEL, SAE).merge(
        gene_set_rows(read_gmt(write_gmt(tmp_path, GMT)), "hallmark")))
    layer6_before = links(clean_graph, "L06/")
    retrained = LayerCatalog(5, 8, 4, [
        CatalogFeature(0, 0.1, top_genes=[TopGene(12, "CD3D", 3.0), TopGene(15, "LCK", 1.0)],
                       annotations=[Annotation("KEGG", "TCR signaling", 0.001, 5.0, 2, ["CD3D", "LCK"])]),
        CatalogFeature(1, 0.0005, top_genes=[TopGene(13, "TP53", 0.75)]),
    ])
    load_annotations(clean_graph, catalog_rows([retrained], MODEL, SAE))
    new_version = "T_CELL\tT cell markers v2\tCD3E\tLCK\n"
    load_annotations(clean_graph, gene_set_rows(read_gmt(write_gmt(tmp_path, new_version, "v2.gmt")), "hallmark"))
    assert links(clean_graph, "L05/F0000") == {("TOP_GENE", "CD3D", 1), ("TOP_GENE", "LCK", 2),
                                                ("ENRICHED_IN", "KEGG:TCR signaling", None)}
    assert links(clean_graph, "L05/F0001") == {("TOP_GENE", "TP53", 1)}
    assert links(clean_graph, "L06/") == layer6_before  # another layer's catalog is untouched
    members = clean_graph.read("MATCH (g:Gene)-[:MEMBER_OF]->(t:Term) RETURN t.id AS term, collect(g.id) AS genes")
    assert {row["term"]: sorted(row["genes"]) for row in members} == {
        "hallmark:T_CELL": ["CD3E", "LCK"], "hallmark:APOPTOSIS": ["BAX", "CASP3", "TP53"],
        "hallmark:INTERFERON": ["IFIT1", "ISG15"]}


def links(graph, uid_part: str) -> set[tuple]:
    """(type, gene or term id, rank) of the TOP_GENE and ENRICHED_IN links of features whose uid contains a part."""
    rows = graph.read("MATCH (f:Feature)-[r:TOP_GENE|ENRICHED_IN]->(n) WHERE f.uid CONTAINS $part "
                      "RETURN type(r) AS type, n.id AS id, r.rank AS rank", part=uid_part)
    return {(row["type"], row["id"], row["rank"]) for row in rows}




@pytest.mark.neo4j
def test_cli_loads_catalogs_and_gmt_and_reports_json(clean_graph, sae_atlas, tmp_path):
    gmt = write_gmt(tmp_path, GMT)
    result = run_atlas("annotate", "--sae-atlas", str(sae_atlas), "--model", MODEL, "--gmt", str(gmt), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"]["features"] == 5 and report["rows"]["member_of"] == 7
    assert report["relationships_created"] == 5 + 4 + 7
    uids = set(feature_properties(clean_graph))
    assert f"{MODEL}/saes/L06/F0007" in uids  # --sae defaults to the atlas directory's name


@pytest.mark.neo4j
def test_cli_refuses_a_malformed_gmt_in_one_line_and_writes_nothing(clean_graph, sae_atlas, tmp_path):
    bad = write_gmt(tmp_path, "OK\tdesc\tA\nBROKEN\n", name="bad.gmt")
    result = run_atlas("annotate", "--sae-atlas", str(sae_atlas), "--model", MODEL, "--gmt", str(bad), "--quiet")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: ") and result.stderr.strip().count("\n") == 0
    assert "bad.gmt:2:" in result.stderr
    assert graph_digest(clean_graph)["nodes"] == {}


@pytest.mark.neo4j
def test_cli_refuses_a_malformed_catalog_and_writes_nothing(clean_graph, sae_atlas):
    path = sae_atlas / "layer06_x4_k32" / "feature_catalog.json"
    data = json.loads(path.read_text())
    data["features"][0]["activation_freq"] = 1.5
    path.write_text(json.dumps(data))
    result = run_atlas("annotate", "--sae-atlas", str(sae_atlas), "--model", MODEL, "--quiet")
    assert result.returncode == 1 and "feature_catalog.json: features[0].activation_freq 1.5" in result.stderr
    assert graph_digest(clean_graph)["nodes"] == {}
