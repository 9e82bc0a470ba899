"""Statistics shared by the compute and analysis layers (numpy only, no torch)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def benjamini_hochberg(p_values: np.ndarray | Sequence[float], n_tests: int | None = None) -> np.ndarray:
    """BH-adjusted q-values of ``p_values`` in a family of ``n_tests`` tests (default: just these).

    Tests left out must have p = 1 (they can only raise ranks' denominators, never lower a q below 1), so passing
    every p < 1 plus the total count is exact; with ``n_tests=len(p)`` it equals
    ``scipy.stats.false_discovery_control``.
    """
    p_values = np.asarray(p_values, dtype=np.float64)
    m = len(p_values) if n_tests is None else int(n_tests)
    if m < len(p_values):
        raise ValueError(f"n_tests {m} is smaller than the number of p-values {len(p_values)}")
    if not len(p_values):
        return p_values.copy()
    order = np.argsort(p_values, kind="stable")
    ranked = p_values[order] * m / np.arange(1, len(p_values) + 1)
    # Tests beyond the given ones have p = 1, so m * 1 / rank >= 1 and the clip below covers them.
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty_like(q_sorted)
    q[order] = np.clip(q_sorted, 0.0, 1.0)
    return q
