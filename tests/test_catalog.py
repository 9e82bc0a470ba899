"""Feature catalogs in the public SAE atlas layout: reading, writing, annotated/label derivation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atlas.catalog import (
    Annotation,
    CatalogFeature,
    LayerCatalog,
    catalog_from_codes,
    read_catalogs,
    read_layer_catalog,
    write_layer_catalog,
)
from atlas.errors import AtlasError
from tests.tiny import build_tiny_atlas, tiny_bert, tiny_cells


def public_style_layer(tmp_path):
    """A layer directory written by hand in the reference project's JSON structure."""
    layer_dir = tmp_path / "layer05_x4_k32"
    layer_dir.mkdir()
    catalog = {"summary": {"run_name": "layer05_x4_k32", "layer": 5, "n_features": 4, "k": 32, "n_alive": 3,
                           "n_dead": 1},
               "features": [
                   {"feature_idx": 0, "is_dead": False, "activation_freq": 0.02, "mean_activation": 0.1,
                    "fire_count": 20, "n_unique_genes": 2,
                    "top_genes": [{"gene_id": 11, "gene_name": "GATA1", "mean_activation": 2.5, "fire_count": 4},
                                  {"gene_id": 12, "gene_name": "TAL1", "mean_activation": 1.5, "fire_count": 3}]},
                   {"feature_idx": 1, "is_dead": False, "activation_freq": 0.0005, "mean_activation": 0.0,
                    "fire_count": 1, "top_genes": [], "n_unique_genes": 0},
                   {"feature_idx": 2, "is_dead": False, "activation_freq": 0.3, "mean_activation": 0.3,
                    "fire_count": 300, "top_genes": [], "n_unique_genes": 0},
                   {"feature_idx": 3, "is_dead": True, "activation_freq": 0.0, "mean_activation": 0.0,
                    "fire_count": 0, "top_genes": [], "n_unique_genes": 0}]}
    annotations = {"summary": {"bh_alpha": 0.05},
                   "feature_annotations": {
                       "0": [{"ontology": "KEGG", "term": "Heme biosynthesis", "p_adjusted": 0.02, "odds_ratio": 9.0,
                              "n_overlap": 2, "overlap_genes": ["GATA1", "TAL1"]},
                             {"ontology": "GO_BP", "term": "erythrocyte differentiation", "p_adjusted": 0.001,
                              "odds_ratio": 12.0, "n_overlap": 2, "overlap_genes": ["GATA1", "TAL1"]}],
                       "2": [{"ontology": "STRING_edges", "term": "pairwise_enrichment", "n_edges": 3,
                              "density": 0.1}]}}
    (layer_dir / "feature_catalog.json").write_text(json.dumps(catalog))
    (layer_dir / "feature_annotations.json").write_text(json.dumps(annotations))
    return layer_dir


def test_reads_the_public_structure_and_derives_annotated_and_label(tmp_path):
    catalog = read_layer_catalog(public_style_layer(tmp_path))
    assert (catalog.layer, catalog.n_features, catalog.k, catalog.n_alive, catalog.n_annotated) == (5, 4, 32, 3, 2)
    best = catalog.feature(0)
    assert best.annotated and best.label == "erythrocyte differentiation" and best.min_p_adjusted == 0.001
    assert [gene.gene_name for gene in best.top_genes] == ["GATA1", "TAL1"] and best.top_genes[0].weight == 2.5
    assert catalog.feature(2).label == "STRING_edges:pairwise_enrichment"
    assert not catalog.feature(1).annotated and catalog.feature(1).label is None
    assert catalog.activation_freqs()[1] == 0.0005


def test_write_then_read_is_lossless(tmp_path):
    original = read_layer_catalog(public_style_layer(tmp_path))
    out = tmp_path / "copy" / "layer05_x4_k32"
    write_layer_catalog(out, original)
    copy = read_layer_catalog(out)
    assert copy.features == original.features
    stored = json.loads((out / "feature_annotations.json").read_text())
    assert stored["summary"]["n_annotated"] == 2 and set(stored["feature_annotations"]) == {"0", "2"}


def test_malformed_catalogs_name_the_file_and_field(tmp_path):
    layer_dir = public_style_layer(tmp_path)
    data = json.loads((layer_dir / "feature_catalog.json").read_text())
    data["features"][1]["activation_freq"] = 1.5
    (layer_dir / "feature_catalog.json").write_text(json.dumps(data))
    with pytest.raises(AtlasError, match=r"features\[1\]\.activation_freq"):
        read_layer_catalog(layer_dir)
    (layer_dir / "feature_catalog.json").write_text("{not json")
    with pytest.raises(AtlasError, match="malformed JSON"):
        read_layer_catalog(layer_dir)


def test_catalog_from_codes_counts_frequency_and_ranks_genes_by_mean_activation():
    codes = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0], [2.0, 0.5]])
    genes = np.array([7, 7, 8, 9])
    catalog = catalog_from_codes(codes, genes, layer=1, k=1, gene_names={7: "A", 9: "B"})
    first, second = catalog.features
    assert first.activation_freq == 0.75 and second.activation_freq == 0.25
    assert [(g.gene_name, g.weight, g.fire_count) for g in first.top_genes] == [("A", 2.0, 2), ("B", 2.0, 1)]


def test_tiny_atlas_has_catalogs_for_every_layer_with_annotated_and_unannotated_features(tmp_path):
    model = tiny_bert(0, n_layers=2)
    build_tiny_atlas(tmp_path, model, tiny_cells(0, 4), steps=5)
    catalogs = read_catalogs(tmp_path)
    assert sorted(catalogs) == [0, 1]
    for catalog in catalogs.values():
        assert 0 < catalog.n_annotated < catalog.n_alive


def test_label_prefers_the_smallest_adjusted_p_value():
    feature = CatalogFeature(index=0, activation_freq=0.1, annotations=[
        Annotation("KEGG", "b", p_adjusted=0.04), Annotation("GO_BP", "a", p_adjusted=0.01)])
    assert LayerCatalog(layer=0, n_features=1, k=1, features=[feature]).feature(0).label == "a"
