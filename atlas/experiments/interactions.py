"""Interaction statistics of a combinatorial ablation (pure numpy, no model needed).

A feature set S of k features is ablated in every non-empty subset T. Conditions are addressed by bit masks:
bit i set = the i-th member is ablated, so a set of k members has masks 1 .. 2**k - 1 and mask 0 is the clean run
(effect 0 by definition). ``effects[mask, target]`` is the Cohen's d of a target feature under that condition.

Two definitions, named and recorded with every result (:data:`DEFINITIONS`):

``study`` (the default: the reference study's code, ``higher_order_ablation.py``)
  - each condition is averaged over the gene positions where one of *its own* members is active, in the cells
    where there is such a position (the ablation engine does this part);
  - targets: features with ``|d| > min_effect`` and consistency ``> min_consistency`` in any condition;
  - redundancy ratio ``|d_S| / sum_i |d_i|``, set to 1.0 where the denominator is ``<= 0.01``;
  - interaction: inclusion-exclusion over absolute effects, for a triplet
    ``|d_ABC| - |d_AB| - |d_AC| - |d_BC| + |d_A| + |d_B| + |d_C|``;
  - marginal ``|d_S| - |d_{S without last}|``;
  - classes: subadditive below 0.8, additive 0.8-1.2, superadditive above 1.2; medians are the headline numbers.

``whole-set`` (this project's earlier definition)
  - every condition is averaged over the positions where any member of the whole set is active;
  - targets: ``|d| > min_effect`` in any condition;
  - redundancy ratio NaN where no member has an effect on its own;
  - interaction: the Moebius term of the signed effects ``I_S = sum_{T subset S} (-1)**(|S|-|T|) d_T`` (summing
    ``I_T`` over all subsets T of S gives back ``d_S``); marginal ``d_S - d_{S without last}`` (signed);
  - classes at ``1 -/+ 0.1``; means are reported next to the medians.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUPERADDITIVE, ADDITIVE, SUBADDITIVE = "superadditive", "additive", "subadditive"
CLASSES = (SUPERADDITIVE, ADDITIVE, SUBADDITIVE)
STUDY, WHOLE_SET = "study", "whole-set"
DEFINITIONS = (STUDY, WHOLE_SET)
DEFAULT_TOLERANCE = {STUDY: 0.2, WHOLE_SET: 0.1}
# the reference code's guard: a ratio whose summed single effects are this small or smaller is 1.0
STUDY_RATIO_FLOOR = 0.01


def check_definition(definition: str) -> str:
    """``definition`` when it is one of :data:`DEFINITIONS`, else a ValueError naming them."""
    if definition not in DEFINITIONS:
        raise ValueError(f"ablation definition {definition!r} is not one of {', '.join(DEFINITIONS)}")
    return definition


def condition_masks(order: int) -> list[int]:
    """Every non-empty subset of ``order`` members as a bit mask, singles first, then pairs, ... then the full set."""
    return sorted(range(1, 1 << order), key=lambda mask: (mask.bit_count(), mask))


def members_of(mask: int) -> list[int]:
    """The member positions ablated under a condition mask."""
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def condition_label(mask: int, names: list[str]) -> str:
    """A readable condition name such as ``A+C`` from member names."""
    return "+".join(names[i] for i in members_of(mask))


def moebius(effects: np.ndarray) -> np.ndarray:
    """Inclusion-exclusion interaction terms of every subset: ``I[T] = sum_{U subset T} (-1)**(|T|-|U|) effects[U]``.

    ``effects`` has ``2**k`` rows (row 0, the clean run, must be zero) and any trailing shape; the fast subset
    transform costs ``k * 2**k`` row operations instead of ``3**k``.
    """
    terms = np.array(effects, dtype=np.float64, copy=True)
    order = (terms.shape[0] - 1).bit_length()
    if terms.shape[0] != 1 << order:
        raise ValueError(f"effects needs 2**k rows, got {terms.shape[0]}")
    for bit in range(order):
        step = 1 << bit
        for mask in range(terms.shape[0]):
            if mask & step:
                terms[mask] -= terms[mask ^ step]
    return terms


def zeta(terms: np.ndarray) -> np.ndarray:
    """The inverse of :func:`moebius`: ``effects[T] = sum_{U subset T} terms[U]``."""
    effects = np.array(terms, dtype=np.float64, copy=True)
    order = (effects.shape[0] - 1).bit_length()
    for bit in range(order):
        step = 1 << bit
        for mask in range(effects.shape[0]):
            if mask & step:
                effects[mask] += effects[mask ^ step]
    return effects


def redundancy_ratio(effects: np.ndarray, mask: int, definition: str = STUDY) -> np.ndarray:
    """``|d_T| / sum_{i in T} |d_i|`` per target; where the denominator is <= 0.01 it is 1.0 (``study``), or NaN
    where it is 0 (``whole-set``)."""
    singles = np.abs(np.stack([effects[1 << i] for i in members_of(mask)])).sum(axis=0)
    floor, fallback = (STUDY_RATIO_FLOOR, 1.0) if check_definition(definition) == STUDY else (0.0, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(singles > floor, np.abs(effects[mask]) / singles, fallback)


def classify(ratio: np.ndarray, tolerance: float = 0.1) -> np.ndarray:
    """Additivity class of each redundancy ratio (NaN ratios are classed additive: no effect at all)."""
    classes = np.full(ratio.shape, ADDITIVE, dtype=object)
    classes[ratio > 1 + tolerance] = SUPERADDITIVE
    classes[ratio < 1 - tolerance] = SUBADDITIVE
    return classes


@dataclass(frozen=True)
class TargetStatistics:
    """Per-target statistics of one feature set, restricted to the targets with a real effect somewhere."""

    targets: np.ndarray        # target feature indices (int)
    full_d: np.ndarray         # d of the full set
    sum_single_abs: np.ndarray  # sum_i |d_i|
    redundancy: np.ndarray
    interaction: np.ndarray    # inclusion-exclusion term of the full set
    marginal_last: np.ndarray  # d_S - d_{S without the last member}
    max_abs_d: np.ndarray      # largest |d| over all conditions
    classes: np.ndarray        # SUPERADDITIVE / ADDITIVE / SUBADDITIVE


def target_mask(effects: np.ndarray, consistency: np.ndarray | None = None, min_effect: float = 0.5,
                min_consistency: float = 0.7, definition: str = STUDY) -> np.ndarray:
    """Which targets are considered: ``|d| > min_effect`` (and, under ``study``, consistency ``> min_consistency``)
    in at least one condition; ``effects`` and ``consistency`` are ``[2**k, n_targets]``."""
    large = np.abs(np.asarray(effects, dtype=np.float64)[1:]) > min_effect
    if check_definition(definition) == STUDY:
        if consistency is None:
            raise ValueError("the study's targets need each condition's consistency")
        large &= np.asarray(consistency, dtype=np.float64)[1:] > min_consistency
    return large.any(axis=0)


def target_statistics(effects: np.ndarray, min_effect: float = 0.5, tolerance: float | None = None, *,
                      consistency: np.ndarray | None = None, min_consistency: float = 0.7,
                      definition: str = STUDY) -> TargetStatistics:
    """Statistics of every target that :func:`target_mask` keeps, under ``definition`` (module docstring).

    ``effects``: ``[2**k, n_targets]`` Cohen's d per condition mask (row 0 = clean = 0); ``consistency`` likewise
    (needed by ``study``); ``tolerance`` defaults to the definition's (0.2 or 0.1).
    """
    effects = np.asarray(effects, dtype=np.float64)
    tolerance = DEFAULT_TOLERANCE[check_definition(definition)] if tolerance is None else tolerance
    full = effects.shape[0] - 1
    order = full.bit_length()
    keep = np.flatnonzero(target_mask(effects, consistency, min_effect, min_consistency, definition))
    kept = effects[:, keep]
    ratio = redundancy_ratio(kept, full, definition)
    last = 1 << (order - 1)
    # the study's interaction and marginal are inclusion-exclusion over |d|, ours over the signed d
    terms = np.abs(kept) if definition == STUDY else kept
    return TargetStatistics(
        targets=keep,
        full_d=kept[full],
        sum_single_abs=np.abs(kept[[1 << i for i in range(order)]]).sum(axis=0),
        redundancy=ratio,
        interaction=moebius(terms)[full],
        marginal_last=terms[full] - terms[full ^ last],
        max_abs_d=np.abs(effects[1:]).max(axis=0)[keep],
        classes=classify(ratio, tolerance),
    )


def _nan_stat(function, values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(function(finite)) if finite.size else float("nan")


def set_summary(stats: TargetStatistics) -> dict[str, float | int]:
    """One row per set: how many targets were considered, their redundancy, interaction, marginal and classes
    (medians are the study's headline numbers; means and fractions stand beside them)."""
    n = len(stats.targets)
    summary: dict[str, float | int] = {
        "n_targets": n,
        "median_redundancy": _nan_stat(np.median, stats.redundancy),
        "mean_redundancy": _nan_stat(np.mean, stats.redundancy),
        "median_interaction": _nan_stat(np.median, stats.interaction),
        "median_marginal": _nan_stat(np.median, stats.marginal_last),
        "mean_abs_interaction": float(np.abs(stats.interaction).mean()) if n else float("nan"),
        "mean_abs_full_d": float(np.abs(stats.full_d).mean()) if n else float("nan"),
    }
    for name in CLASSES:
        summary[f"n_{name}"] = int((stats.classes == name).sum())
        summary[f"fraction_{name}"] = float((stats.classes == name).mean()) if n else float("nan")
    return summary


def pair_redundancy(effects: np.ndarray, targets: np.ndarray, definition: str = STUDY) -> list[float]:
    """The median redundancy ratio over ``targets`` of every pair of members (AB, AC, BC, ... in mask order): the
    study's pairwise ratios."""
    kept = np.asarray(effects, dtype=np.float64)[:, targets]
    order = (kept.shape[0] - 1).bit_length()
    return [_nan_stat(np.median, redundancy_ratio(kept, mask, definition))
            for mask in condition_masks(order) if mask.bit_count() == 2]


def order_summary(effects: np.ndarray, min_effect: float = 0.5, *, consistency: np.ndarray | None = None,
                  min_consistency: float = 0.7, definition: str = STUDY) -> list[dict[str, float | int]]:
    """One row per subset order (single, pair, triplet, ...) of one set, averaged over the subsets of that order.

    Targets are those :func:`target_mask` keeps, so every order is measured on the same targets; ``n_effects``
    counts the targets with ``|d| > min_effect`` under a subset of that order.
    """
    effects = np.asarray(effects, dtype=np.float64)
    order = (effects.shape[0] - 1).bit_length()
    keep = target_mask(effects, consistency, min_effect, min_consistency, definition)
    kept = effects[:, keep]
    rows = []
    for size in range(1, order + 1):
        masks = [mask for mask in condition_masks(order) if mask.bit_count() == size]
        ratios = np.concatenate([redundancy_ratio(kept, mask, definition) for mask in masks]) \
            if kept.size else np.array([])
        rows.append({
            "order": size,
            "n_subsets": len(masks),
            "n_effects": float(np.mean([(np.abs(effects[mask]) > min_effect).sum() for mask in masks])),
            "mean_abs_d": float(np.mean([np.abs(kept[mask]).mean() for mask in masks])) if kept.size else float("nan"),
            "median_redundancy": _nan_stat(np.median, ratios),
        })
    return rows

