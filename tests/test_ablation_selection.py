"""Automatic feature-set selection from SAE catalogs: same pathway, cross pathway, random controls."""

from __future__ import annotations

import pytest

from atlas.catalog import Annotation, CatalogFeature, LayerCatalog
from atlas.errors import AtlasError
from atlas.experiments.selection import feature_terms, select_sets


def _catalog(layer: int) -> LayerCatalog:
    """Features 0-5 alive; 0-2 in 'GO:a', 3-4 in 'GO:b', 2 also in 'GO:b'; 5 unannotated; 6 dead."""
    terms = {0: ["a"], 1: ["a"], 2: ["a", "b"], 3: ["b"], 4: ["b"], 5: []}
    features = [CatalogFeature(index, 0.05, annotations=[Annotation("GO", term) for term in names])
                for index, names in terms.items()]
    features.append(CatalogFeature(6, 0.0, is_dead=True, annotations=[Annotation("GO", "a")]))
    return LayerCatalog(layer, 8, 2, features)


CATALOGS = {1: _catalog(1), 2: _catalog(2)}


def test_same_pathway_sets_share_a_term_and_are_distinct():
    sets = select_sets(CATALOGS, [1], "same-pathway", order=2, n_sets=5, seed=3)
    terms = feature_terms(CATALOGS, [1])
    assert len(sets) == 5 and len({s.members for s in sets}) == 5
    for feature_set in sets:
        assert all(feature_set.term in terms[member] for member in feature_set.members)
        assert feature_set.selection == "same-pathway"


def test_same_pathway_sets_can_span_layers():
    sets = select_sets(CATALOGS, [1, 2], "same-pathway", order=3, n_sets=20, seed=0)
    assert any(len({member.layer for member in s.members}) == 2 for s in sets)


def test_cross_pathway_sets_share_no_term():
    terms = feature_terms(CATALOGS, [1])
    sets = select_sets(CATALOGS, [1], "cross-pathway", order=2, n_sets=10, seed=1)
    assert sets
    for feature_set in sets:
        first, second = feature_set.members
        assert not terms[first] & terms[second]


def test_random_sets_use_alive_features_only_and_are_reproducible():
    first = select_sets(CATALOGS, [1], "random", order=3, n_sets=4, seed=7)
    again = select_sets(CATALOGS, [1], "random", order=3, n_sets=4, seed=7)
    assert [s.members for s in first] == [s.members for s in again]
    assert all(member.index != 6 for s in first for member in s.members)


def test_an_impossible_selection_is_a_user_error():
    with pytest.raises(AtlasError, match="no cross-pathway sets of 3 features"):
        select_sets(CATALOGS, [1], "cross-pathway", order=3, n_sets=2)
    with pytest.raises(AtlasError, match="no feature catalog for layer"):
        select_sets(CATALOGS, [4], "random", order=2, n_sets=2)
