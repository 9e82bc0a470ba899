"""Benjamini-Hochberg, the one implementation behind run-level edge q-values and enrichment p_adj."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from atlas.stats import benjamini_hochberg


def test_bh_equals_scipys_false_discovery_control():
    p = np.random.default_rng(5).uniform(size=500) ** 3
    p[:10] = p[10]                                                   # ties
    np.testing.assert_allclose(benjamini_hochberg(p), scipy_stats.false_discovery_control(p), rtol=1e-12)


def test_bh_over_the_p_values_below_one_and_the_test_count_is_exact():
    p = np.random.default_rng(6).uniform(size=300) ** 4
    family = np.concatenate([p, np.ones(700)])
    expected = scipy_stats.false_discovery_control(family)[:300]
    np.testing.assert_allclose(benjamini_hochberg(p, n_tests=1000), expected, rtol=1e-12)
    with pytest.raises(ValueError):
        benjamini_hochberg(p, n_tests=10)
