"""Enrichment of features' top genes in gene sets: Fisher's exact test, BH control, the atlas annotation format."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control, fisher_exact

from atlas.enrichment import annotations_document, benjamini_hochberg, catalog_top_genes, enrich_features
from atlas.errors import AtlasError

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


def test_benjamini_hochberg_matches_scipy():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001, 0.04])
    assert benjamini_hochberg(p) == pytest.approx(false_discovery_control(p, method="bh"))


def test_benjamini_hochberg_counts_untested_pairs_as_p_one():
    p = np.array([0.01, 0.02])
    full = false_discovery_control(np.array([0.01, 0.02, 1.0, 1.0, 1.0]), method="bh")
    assert benjamini_hochberg(p, n_tests=5) == pytest.approx(full[:2])


def test_adjustment_counts_every_feature_and_gene_set_pair():
    results = enrich_features(FEATURES, GENE_SETS)
    tested = [result.p_value for result in results]
    assert [r.p_adjusted for r in results] == pytest.approx(benjamini_hochberg(tested, len(FEATURES) * 3))


def test_annotation_document_lists_significant_sets_per_feature():
    results = enrich_features(FEATURES, GENE_SETS)
    document = annotations_document(results, source="markers", layer=2, n_features=8, n_alive=4, alpha=0.5)
    significant = [r for r in results if r.p_adjusted < 0.5]
    assert significant
    assert document["summary"]["n_annotated"] == len({r.feature for r in significant})
    first = document["feature_annotations"][str(significant[0].feature)][0]
    assert first["ontology"] == "markers"
    assert set(first) >= {"term", "p_adjusted", "odds_ratio", "n_overlap", "overlap_genes"}


def test_catalog_top_genes_skips_dead_features_and_rejects_other_documents():
    catalog = {"features": [
        {"feature_idx": 0, "is_dead": False, "top_genes": [{"gene_name": "CD3D"}, {"gene_name": "LCK"}]},
        {"feature_idx": 1, "is_dead": True, "top_genes": []},
    ]}
    assert catalog_top_genes(catalog) == {0: ["CD3D", "LCK"]}
    with pytest.raises(AtlasError, match="features"):
        catalog_top_genes({"feature_annotations": {}})
