"""Automatic choice of feature sets to ablate: same pathway, cross pathway, and random controls.

Pathways come from the SAE feature catalogs (``feature_annotations.json``): two features share a pathway when
they carry the same annotation term. Draws are seeded, so a selection is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations

import numpy as np

from atlas.catalog import LayerCatalog
from atlas.errors import AtlasError
from atlas.experiments.features import FeatureRef, FeatureSet

SELECTIONS = ("same-pathway", "cross-pathway", "random")
_ATTEMPTS_PER_SET = 200


def _alive(catalogs: Mapping[int, LayerCatalog], layers: Iterable[int], min_frequency: float) -> list:
    missing = [layer for layer in layers if layer not in catalogs]
    if missing:
        raise AtlasError(f"no feature catalog for layer(s) {missing} (available: {sorted(catalogs)})")
    return [(layer, feature) for layer in sorted(set(layers)) for feature in catalogs[layer].features
            if not feature.is_dead and feature.activation_freq >= min_frequency]


def feature_terms(catalogs: Mapping[int, LayerCatalog], layers: Iterable[int], min_frequency: float = 0.0
                  ) -> dict[FeatureRef, frozenset[str]]:
    """Annotated alive features of ``layers`` -> their annotation terms (``ontology:term``)."""
    return {FeatureRef(layer, feature.index): frozenset(f"{a.ontology}:{a.term}" for a in feature.annotations)
            for layer, feature in _alive(catalogs, layers, min_frequency) if feature.annotations}


def same_pathway_sets(terms: Mapping[FeatureRef, frozenset[str]], order: int, n_sets: int, seed: int = 0
                      ) -> list[FeatureSet]:
    """Up to ``n_sets`` sets whose members all carry one shared term, spread over terms (largest terms first)."""
    by_term: dict[str, list[FeatureRef]] = {}
    for feature, feature_terms_ in terms.items():
        for term in feature_terms_:
            by_term.setdefault(term, []).append(feature)
    candidates = sorted(((term, sorted(members)) for term, members in by_term.items() if len(members) >= order),
                        key=lambda item: (-len(item[1]), item[0]))
    rng = np.random.default_rng(seed)
    chosen: dict[tuple[FeatureRef, ...], str] = {}
    for _ in range(_ATTEMPTS_PER_SET):  # round-robin over terms, one random draw per term per round
        for term, members in candidates:
            if len(chosen) == n_sets:
                break
            draw = tuple(sorted(members[i] for i in rng.choice(len(members), size=order, replace=False)))
            chosen.setdefault(draw, term)
    return [FeatureSet(f"same-pathway-{i:03d}", members, "same-pathway", term)
            for i, (members, term) in enumerate(chosen.items())]


def _random_sets(pool: list[FeatureRef], order: int, n_sets: int, seed: int, selection: str, accept) -> list:
    if len(pool) < order:
        return []
    rng = np.random.default_rng(seed)
    chosen: list[tuple[FeatureRef, ...]] = []
    for _ in range(n_sets * _ATTEMPTS_PER_SET):
        if len(chosen) == n_sets:
            break
        members = tuple(sorted(pool[i] for i in rng.choice(len(pool), size=order, replace=False)))
        if members not in chosen and accept(members):
            chosen.append(members)
    return [FeatureSet(f"{selection}-{i:03d}", members, selection) for i, members in enumerate(chosen)]


def cross_pathway_sets(terms: Mapping[FeatureRef, frozenset[str]], order: int, n_sets: int, seed: int = 0
                       ) -> list[FeatureSet]:
    """Up to ``n_sets`` sets of annotated features no two of which share a term."""
    def disjoint(members: tuple[FeatureRef, ...]) -> bool:
        return all(not terms[a] & terms[b] for a, b in combinations(members, 2))
    return _random_sets(sorted(terms), order, n_sets, seed, "cross-pathway", disjoint)


def random_sets(catalogs: Mapping[int, LayerCatalog], layers: Iterable[int], order: int, n_sets: int,
                seed: int = 0, min_frequency: float = 0.001) -> list[FeatureSet]:
    """Up to ``n_sets`` sets of alive features (activation frequency >= ``min_frequency``), annotated or not."""
    pool = sorted(FeatureRef(layer, feature.index) for layer, feature in _alive(catalogs, layers, min_frequency))
    return _random_sets(pool, order, n_sets, seed, "random", lambda members: True)


def select_sets(catalogs: Mapping[int, LayerCatalog], layers: Iterable[int], selection: str, order: int,
                n_sets: int, seed: int = 0, min_frequency: float = 0.001) -> list[FeatureSet]:
    """Sets chosen by ``selection`` (one of SELECTIONS) among the features of ``layers``; none found is an error."""
    layers = list(layers)
    if selection not in SELECTIONS:
        raise AtlasError(f"unknown selection {selection!r} (use {', '.join(SELECTIONS)})")
    if order < 1 or n_sets < 1:
        raise AtlasError(f"order and number of sets must be positive (got {order}, {n_sets})")
    if selection == "random":
        sets = random_sets(catalogs, layers, order, n_sets, seed, min_frequency)
    else:
        terms = feature_terms(catalogs, layers, min_frequency)
        choose = same_pathway_sets if selection == "same-pathway" else cross_pathway_sets
        sets = choose(terms, order, n_sets, seed)
    if not sets:
        raise AtlasError(f"no {selection} sets of {order} features in layer(s) {layers} "
                         f"(annotated alive features: {len(feature_terms(catalogs, layers, min_frequency))})")
    return sets
