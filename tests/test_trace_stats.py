"""Edge statistics: Welford and Chan merge, the reference's d and consistency, t-test p."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from atlas.trace.stats import (
    Thresholds,
    WelfordState,
    layer_statistics,
    significant,
    t_test_p,
)


def observe(samples: np.ndarray, source_features=(0,), layer: int = 1) -> WelfordState:
    """A state fed ``samples`` (cells x source features x targets) one cell at a time."""
    n_cells, n_sources, n_targets = samples.shape
    state = WelfordState.empty(source_features, {layer: n_targets})
    rows = state.rows(source_features)
    for cell in samples:
        state.update(rows, {layer: torch.as_tensor(cell)})
    return state


def test_mean_std_d_and_p_equal_numpy_and_scipys_one_sample_t_test():
    samples = np.random.default_rng(0).normal(0.3, 1.0, size=(9, 2, 5))
    result = layer_statistics(observe(samples, (3, 8)), 1)
    np.testing.assert_allclose(result.mean, samples.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(result.std, samples.std(axis=0, ddof=1), atol=1e-12)
    np.testing.assert_allclose(result.cohens_d, samples.mean(axis=0) / samples.std(axis=0, ddof=1), atol=1e-12)
    np.testing.assert_allclose(result.p, scipy_stats.ttest_1samp(samples, 0.0, axis=0).pvalue, rtol=1e-10)
    assert list(result.source_features) == [3, 8] and list(result.n) == [9, 9]


def test_reference_consistency_counts_zero_changes_on_the_negative_side():
    samples = np.array([0.5, 0.0, 0.0, 0.0, 0.4, 0.3, 0.0, 0.0, 0.0, 0.0])[:, None, None]
    reference = layer_statistics(observe(samples), 1, "reference")
    signed = layer_statistics(observe(samples), 1, "signed")
    assert reference.consistency[0, 0] == pytest.approx(0.7)      # max(3, 10 - 3) / 10: the zeros count
    assert signed.consistency[0, 0] == pytest.approx(0.3)         # 3 of 10 cells share the sign of the mean


def test_significance_is_strict_on_both_thresholds():
    samples = np.random.default_rng(1).normal(1.0, 0.5, size=(12, 1, 4))
    result = layer_statistics(observe(samples), 1)
    exact = Thresholds(cohens_d=float(np.abs(result.cohens_d).min()), consistency=0.5)
    mask = significant(result, exact)
    assert not mask[0, np.argmin(np.abs(result.cohens_d))] and mask.sum() == 3


def test_features_seen_in_fewer_than_two_cells_are_not_tested():
    state = observe(np.ones((1, 2, 3)), (0, 1))
    assert layer_statistics(state, 1).source_features.size == 0


def test_chan_merge_of_cell_shards_equals_one_sequential_pass():
    samples = np.random.default_rng(2).normal(size=(11, 3, 6))
    samples[:, 1] = 0.0
    whole = observe(samples, (1, 4, 9))
    merged = observe(samples[:4], (1, 4, 9)).merge(observe(samples[4:], (1, 4, 9)))
    assert torch.equal(whole.n, merged.n) and torch.equal(whole.positive[1], merged.positive[1])
    torch.testing.assert_close(whole.mean[1], merged.mean[1], atol=1e-12, rtol=0)
    torch.testing.assert_close(whole.m2[1], merged.m2[1], atol=1e-12, rtol=0)


def test_merge_with_an_empty_shard_changes_nothing():
    state = observe(np.random.default_rng(3).normal(size=(5, 1, 4)))
    empty = WelfordState.empty([0], {1: 4})
    merged = empty.merge(state)
    assert torch.equal(merged.mean[1], state.mean[1]) and torch.equal(merged.m2[1], state.m2[1])


def test_state_round_trips_through_plain_arrays():
    state = observe(np.random.default_rng(4).normal(size=(5, 2, 3)), (2, 7))
    copy = WelfordState.from_arrays(state.to_arrays())
    for name in ("mean", "m2", "positive", "negative"):
        assert torch.equal(getattr(copy, name)[1], getattr(state, name)[1])
    assert list(copy.source_features) == [2, 7]


def test_t_test_p_of_no_effect_is_one_and_of_a_huge_effect_is_negligible():
    assert t_test_p(np.array([0.0]), np.array([20]))[0] == 1.0
    assert t_test_p(np.array([1e9]), np.array([20]))[0] < 1e-100
