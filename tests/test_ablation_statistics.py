"""Interaction statistics of combinatorial ablation: inclusion-exclusion, redundancy, additivity classes."""

from __future__ import annotations

import numpy as np

from atlas.experiments.interactions import (
    ADDITIVE,
    SUBADDITIVE,
    SUPERADDITIVE,
    condition_masks,
    moebius,
    order_summary,
    set_summary,
    target_statistics,
    zeta,
)


def _effects(order: int, n_targets: int, seed: int = 0) -> np.ndarray:
    effects = np.random.default_rng(seed).normal(size=(1 << order, n_targets))
    effects[0] = 0.0
    return effects


def test_condition_masks_list_singles_then_pairs_then_the_full_set():
    assert condition_masks(3) == [0b001, 0b010, 0b100, 0b011, 0b101, 0b110, 0b111]


def test_interaction_term_of_a_triplet_is_the_inclusion_exclusion_sum():
    d = _effects(3, 5)
    a, b, c, ab, ac, bc, abc = (d[mask] for mask in (1, 2, 4, 3, 5, 6, 7))
    expected = abc - ab - ac - bc + a + b + c
    np.testing.assert_allclose(moebius(d)[7], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(moebius(d)[3], ab - a - b, rtol=0, atol=1e-12)


def test_interaction_terms_of_all_subsets_sum_back_to_the_joint_effect():
    d = _effects(4, 6, seed=1)
    terms = moebius(d)
    for mask in range(1, 16):
        subsets = [sub for sub in range(1, 16) if sub & mask == sub]
        np.testing.assert_allclose(sum(terms[sub] for sub in subsets), d[mask], rtol=0, atol=1e-12)
    np.testing.assert_allclose(zeta(terms), d, rtol=0, atol=1e-12)


def test_integer_effects_satisfy_inclusion_exclusion_exactly():
    d = np.random.default_rng(2).integers(-50, 50, size=(8, 4)).astype(float)
    d[0] = 0
    assert np.array_equal(zeta(moebius(d)), d)


# The tests below up to the order summary state the whole-set definition (signed Moebius interaction, NaN ratio,
# targets by |d| alone); the study's definition, the default, is stated after them.
WHOLE_SET = {"definition": "whole-set"}


def test_additive_effects_have_no_interaction_and_are_classed_additive():
    singles = np.array([[0.8, -0.6], [0.4, -0.3], [0.3, -0.2]])
    d = np.zeros((8, 2))
    for mask in range(1, 8):
        d[mask] = sum(singles[i] for i in range(3) if mask >> i & 1)
    stats = target_statistics(d, **WHOLE_SET)
    np.testing.assert_allclose(stats.interaction, 0, atol=1e-12)
    np.testing.assert_allclose(stats.redundancy, 1.0)
    assert list(stats.classes) == [ADDITIVE, ADDITIVE]
    np.testing.assert_allclose(stats.marginal_last, singles[2])


def test_redundant_members_are_subadditive_and_synergistic_members_superadditive():
    d = np.zeros((4, 2))
    d[1] = d[2] = [1.0, 0.3]   # target 0: A and B do the same job; target 1: only together
    d[3] = [1.0, 1.5]
    stats = target_statistics(d, **WHOLE_SET)
    np.testing.assert_allclose(stats.redundancy, [0.5, 2.5])
    assert list(stats.classes) == [SUBADDITIVE, SUPERADDITIVE]
    np.testing.assert_allclose(stats.interaction, [-1.0, 0.9])


def test_only_targets_with_a_large_effect_in_some_condition_are_classified():
    d = np.zeros((4, 3))
    d[1, 0], d[3, 1], d[2, 2] = 0.6, -0.7, 0.4
    stats = target_statistics(d, min_effect=0.5, **WHOLE_SET)
    assert list(stats.targets) == [0, 1]
    summary = set_summary(stats)
    assert summary["n_targets"] == 2
    assert summary["fraction_additive"] + summary["fraction_subadditive"] + summary["fraction_superadditive"] == 1


def test_order_summary_of_a_set_of_one_is_its_single_effect():
    d = np.array([[0.0, 0.0], [0.9, 0.2]])
    rows = order_summary(d, **WHOLE_SET)
    assert rows == [{"order": 1, "n_subsets": 1, "n_effects": 1.0, "mean_abs_d": 0.9, "median_redundancy": 1.0}]
