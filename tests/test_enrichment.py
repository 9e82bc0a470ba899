"""Enrichment of features' top genes in gene sets: Fisher's exact test, BH control, the atlas annotation format."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from scipy.stats import fisher_exact

from atlas.catalog import Annotation, CatalogFeature, LayerCatalog, TopGene, read_catalogs, write_layer_catalog
from atlas.cli import cli
from atlas.enrichment import annotate_catalog, enrich_atlas, enrich_features
from atlas.errors import AtlasError
from atlas.stats import benjamini_hochberg

GENE_SETS = {
    "T_CELL": ["CD3D", "CD3E", "CD2", "IL7R", "LCK"],
    "B_CELL": ["MS4A1", "CD79A", "CD79B", "CD19"],
    "MONOCYTE": ["CD14", "LYZ", "FCN1", "S100A8"],
}
FEATURES = {
    0: ["CD3D", "CD3E", "CD2", "IL7R", "GAPDH"],
    1: ["MS4A1", "CD79A", "CD79B", "ACTB"],
    2: ["CD14", "LYZ", "FCN1", "S100A8", "MALAT1"],
    3: ["GAPDH", "ACTB", "MALAT1", "CD3D"],
}


def test_p_values_equal_scipys_one_sided_fisher_test():
    results = enrich_features(FEATURES, GENE_SETS)
    background = set().union(*FEATURES.values())
    for result in results:
        genes = set(FEATURES[result.feature])
        term = set(GENE_SETS[result.term]) & background
        a = len(genes & term)
        table = [[a, len(genes) - a], [len(term) - a, len(background) - len(genes) - len(term) + a]]
        assert result.p_value == pytest.approx(fisher_exact(table, alternative="greater").pvalue, rel=1e-9)
        assert result.n_overlap == a


def test_each_marker_feature_is_enriched_in_its_own_gene_set_first():
    results = enrich_features(FEATURES, GENE_SETS)
    best = {}
    for result in results:
        best.setdefault(result.feature, result.term)
    assert best == {0: "T_CELL", 1: "B_CELL", 2: "MONOCYTE"}


def test_genes_match_case_insensitively():
    lower = {feature: [gene.lower() for gene in genes] for feature, genes in FEATURES.items()}
    assert [(r.feature, r.term) for r in enrich_features(lower, GENE_SETS)] == [
        (r.feature, r.term) for r in enrich_features(FEATURES, GENE_SETS)
    ]


def test_overlaps_below_the_minimum_are_not_reported():
    results = enrich_features(FEATURES, GENE_SETS, min_overlap=2)
    assert all(result.n_overlap >= 2 for result in results)
    assert not any(result.feature == 3 for result in results)  # only CD3D overlaps a set


def test_gene_sets_outside_the_size_range_are_skipped():
    # sizes count genes in the background: T_CELL and MONOCYTE have 4 there, B_CELL 3 (CD19 is no top gene)
    results = enrich_features(FEATURES, GENE_SETS, max_set_size=3)
    assert {result.term for result in results} == {"B_CELL"}


def test_adjustment_counts_every_feature_and_gene_set_pair():
    results = enrich_features(FEATURES, GENE_SETS)
    tested = [result.p_value for result in results]
    assert [r.p_adjusted for r in results] == pytest.approx(benjamini_hochberg(tested, len(FEATURES) * 3))


def marker_catalog() -> LayerCatalog:
    features = [CatalogFeature(index, 0.1, top_genes=[TopGene(i, gene, 1.0 - i / 10) for i, gene in enumerate(genes)])
                for index, genes in FEATURES.items()]
    features[3].annotations = [Annotation("GO_BP", "kept from another source", p_adjusted=0.01)]
    features.append(CatalogFeature(4, 0.0, is_dead=True))
    return LayerCatalog(layer=2, n_features=5, k=4, features=features)


def test_annotate_catalog_adds_significant_sets_and_keeps_other_sources():
    catalog = marker_catalog()
    annotated = annotate_catalog(catalog, GENE_SETS, "markers", alpha=0.5)
    significant = {(r.feature, r.term) for r in enrich_features(FEATURES, GENE_SETS) if r.p_adjusted < 0.5}
    assert significant and annotated == len({feature for feature, _ in significant})
    got = {(f.index, a.term) for f in catalog.features for a in f.annotations if a.ontology == "markers"}
    assert got == significant
    assert catalog.feature(3).annotations[0].term == "kept from another source"


def test_reannotating_with_the_same_source_replaces_its_annotations():
    catalog = marker_catalog()
    annotate_catalog(catalog, GENE_SETS, "markers", alpha=0.5)
    annotate_catalog(catalog, {"NOTHING": ["X1", "X2", "X3"]}, "markers", alpha=0.5)
    assert all(a.ontology != "markers" for f in catalog.features for a in f.annotations)


def test_enrich_atlas_writes_annotations_that_the_catalog_reader_sees(tmp_path):
    layer_dir = tmp_path / "layer02_x4_k4"
    write_layer_catalog(layer_dir, marker_catalog())
    gmt = tmp_path / "markers.gmt"
    gmt.write_text("".join(f"{name}\tdescription\t" + "\t".join(genes) + "\n" for name, genes in GENE_SETS.items()))
    rows = enrich_atlas(tmp_path, gmt, alpha=0.5)
    assert rows[0]["layer"] == 2 and rows[0]["source"] == "markers" and rows[0]["annotated"] > 0
    reread = read_catalogs(tmp_path)[2]
    assert reread.feature(0).label == "T_CELL"
    document = json.loads((layer_dir / "feature_annotations.json").read_text())
    assert document["feature_annotations"]["0"][0]["ontology"] == "markers"


def test_enrich_atlas_without_catalogs_is_a_clear_error(tmp_path):
    gmt = tmp_path / "markers.gmt"
    gmt.write_text("SET\tdescription\tA\tB\tC\n")
    with pytest.raises(AtlasError, match="no layerNN"):
        enrich_atlas(tmp_path, gmt)


@pytest.mark.neo4j
def test_annotate_enrich_writes_and_loads_enrichment_terms(clean_graph, tmp_path):
    write_layer_catalog(tmp_path / "saes" / "layer02_x4_k4", marker_catalog())
    gmt = tmp_path / "markers.gmt"
    gmt.write_text("".join(f"{name}\tdescription\t" + "\t".join(genes) + "\n" for name, genes in GENE_SETS.items()))
    result = CliRunner().invoke(cli, ["annotate", "--sae-atlas", str(tmp_path / "saes"), "--model", "demo",
                                      "--enrich", str(gmt), "--json"])
    assert result.exit_code == 0, result.output
    rows = clean_graph.read(
        "MATCH (f:Feature)-[e:ENRICHED_IN]->(t:Term)<-[:MEMBER_OF]-(g:Gene)<-[:TOP_GENE]-(f) "
        "RETURN f.index AS feature, t.id AS term, f.label AS label, count(g) AS genes ORDER BY feature")
    by_feature = {row["feature"]: row for row in rows}
    assert by_feature[0]["term"] == "markers:T_CELL" and by_feature[0]["label"] == "T_CELL"
    assert by_feature[0]["genes"] == 4
    assert json.loads((tmp_path / "saes" / "layer02_x4_k4" / "feature_annotations.json").read_text())[
        "feature_annotations"]["0"][0]["term"] == "T_CELL"
