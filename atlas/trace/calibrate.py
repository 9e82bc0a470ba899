"""Calibration of a traced run (`atlas trace calibrate`): the reference study's sign-flip permutation null.

The null of one source feature is "its ablation has no consistently directed effect on this target": each cell's
delta keeps its size and gets an independent random sign. A target whose delta is zero in every cell stays zero
under every flip (the ablation cannot reach it): it is *degenerate*, never a null edge and not a test. Per source
feature, ``B`` sign vectors (all but the identity) give, vectorised over permutations x targets:

- the null edge count at the run's thresholds (mean over permutations: ``expected_null_edges``; sd: ``null_sd``)
  and at every threshold of the sweep; empirical FDR = expected null edges / observed edges, per feature and for
  every calibrated feature together (``empirical_fdr_subset``);
- a permutation p per live target, conservative ``(1 + #{b: |d_b| >= |d|}) / (1 + B)``, and Benjamini-Hochberg
  over every live target of every calibrated feature (``perm_q``);
- Hedges' g = d (1 - 3 / (4n - 5)) (n > 2), the small-sample correction the study screens calibrated edges with.

Observed statistics are recomputed from the stored deltas (float16 by default, as the study did), so the null and
the observation share their rounding; ``float16_storage_effect`` reports how far the recomputed edge counts move
from the trace's. Flipped variance needs no loop: the sum of squares is sign-invariant. A consistency threshold of
1.0 counts ``c >= 1`` (``c > 1`` is empty), as the study did. Each feature's signs come from a generator seeded by
(seed, feature), so a feature's numbers do not depend on which other features were calibrated.

When only N features are calibrated they are the study's stratified choice (a third with the highest degree, the
rest sampled evenly across 8 degree strata) and the calibrated edge count of the whole run is extrapolated from the
surviving fraction of the calibrated feature's degree decile.

Field names follow the study's ``summary.json`` wherever they mean the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atlas.errors import AtlasError
from atlas.runformat import (
    CALIBRATION_COLUMNS,
    Manifest,
    file_sha256,
    read_manifest,
    read_shard,
    write_file_atomically,
    write_manifest,
    write_shard,
)
from atlas.stats import benjamini_hochberg
from atlas.trace.deltas import feature_deltas, read_unit_deltas
from atlas.trace.stats import MIN_STD

SWEEP_D = (0.3, 0.5, 0.8, 1.0)
SWEEP_CONSISTENCY = (0.6, 0.7, 0.8, 0.9, 1.0)
DEFAULT_PERMUTATIONS = 500
DEFAULT_ALPHA = 0.05
DECILES = 10
STRATA = 8
FEATURES_TABLE = "calibration-features.parquet"
FEATURES_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("source_layer", pa.int16()), ("source_feature", pa.int32()), ("n", pa.int32()),
    ("degree", pa.int32()), ("observed_edges", pa.int32()), ("expected_null_edges", pa.float64()),
    ("null_sd", pa.float64()), ("fdr", pa.float64()), ("effect_size_edges", pa.int32()),
    ("surviving_edges", pa.int32()),
])


def hedges_g(cohens_d: np.ndarray, n: int) -> np.ndarray:
    """One-sample Hedges' g: Cohen's d times the small-sample correction 1 - 3 / (4n - 5) (unchanged for n <= 2)."""
    return cohens_d * (1.0 - 3.0 / (4.0 * n - 5.0)) if n > 2 else cohens_d


def sign_flip_statistics(deltas: np.ndarray, signs: np.ndarray, consistency_mode: str = "reference"
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Cohen's d and consistency ``(B, F)`` of the deltas ``(n, F)`` with each cell's sign flipped by ``signs``
    ``(B, n)`` in {-1, +1}; the identity row gives the observed statistics. Definitions as atlas.trace.stats."""
    n = deltas.shape[0]
    mean = signs @ deltas / n
    variance = np.maximum(((deltas ** 2).sum(axis=0) - n * mean ** 2) / (n - 1), 0.0)
    cohens_d = mean / np.maximum(np.sqrt(variance), MIN_STD)
    keeps_sign = (signs > 0).astype(np.float64)
    # A flipped cell is positive when its delta was negative: no (B, n, F) product needed. Float operands keep
    # the products in BLAS (a boolean operand took numpy's generic loop: 4.7x slower at 500 x 20 x 512).
    positive = keeps_sign @ (deltas > 0).astype(np.float64) + (1.0 - keeps_sign) @ (deltas < 0).astype(np.float64)
    if consistency_mode == "reference":
        return cohens_d, np.maximum(positive, n - positive) / n
    negative = (deltas != 0).sum(axis=0) - positive
    agreeing = np.where(mean > 0, positive, np.where(mean < 0, negative, n - positive - negative))
    return cohens_d, agreeing / n


def passes(cohens_d: np.ndarray, consistency: np.ndarray, d_threshold: float, c_threshold: float) -> np.ndarray:
    """|d| > d_threshold and consistency > c_threshold (>= when the threshold is 1, as the study's sweep)."""
    agrees = consistency >= c_threshold if c_threshold >= 1.0 else consistency > c_threshold
    return (np.abs(cohens_d) > d_threshold) & agrees


def sign_vectors(seed: int, feature: int, permutations: int, n: int) -> np.ndarray:
    """``permutations`` random sign vectors of length n, none the identity (it would replay the observation)."""
    rng = np.random.default_rng([seed, feature])
    signs = rng.choice([-1.0, 1.0], size=(permutations, n))
    identity = (signs > 0).all(axis=1)
    while identity.any():
        signs[identity] = rng.choice([-1.0, 1.0], size=(int(identity.sum()), n))
        identity = (signs > 0).all(axis=1)
    return signs


@dataclass
class FeatureNull:
    """The null of one source feature: counts, and the permutation p of each live target per layer."""

    feature: int
    n: int
    observed_edges: int
    null_edges: np.ndarray                                   # (B,) at the run's thresholds
    sweep_observed: dict[tuple[float, float], int]
    sweep_null: dict[tuple[float, float], float]             # mean over permutations
    perm_p: dict[int, np.ndarray]                            # layer -> (F,), 1 on degenerate targets
    live: dict[int, np.ndarray]                              # layer -> (F,) bool
    effect: dict[int, np.ndarray]                            # layer -> (F,) bool: |g| and consistency pass


def feature_null(deltas: dict[int, np.ndarray], signs: np.ndarray, d_threshold: float, c_threshold: float,
                 consistency_mode: str, feature: int) -> FeatureNull:
    """The sign-flip null of one source feature's per-cell deltas ``{layer: (n, F)}``."""
    permutations, n = signs.shape
    identity = np.ones((1, n))
    observed_edges, null_edges = 0, np.zeros(permutations)
    sweep_observed = dict.fromkeys(((d, c) for d in SWEEP_D for c in SWEEP_CONSISTENCY), 0)
    sweep_null = dict.fromkeys(sweep_observed, 0.0)
    perm_p, live, effect = {}, {}, {}
    for layer, values in sorted(deltas.items()):
        observed_d, observed_c = (stat[0] for stat in sign_flip_statistics(values, identity, consistency_mode))
        null_d, null_c = sign_flip_statistics(values, signs, consistency_mode)
        observed_edges += int(passes(observed_d, observed_c, d_threshold, c_threshold).sum())
        null_edges += passes(null_d, null_c, d_threshold, c_threshold).sum(axis=1)
        for d, c in sweep_observed:
            sweep_observed[d, c] += int(passes(observed_d, observed_c, d, c).sum())
            sweep_null[d, c] += float(passes(null_d, null_c, d, c).sum(axis=1).mean())
        live[layer] = (values != 0).any(axis=0)
        exceed = (np.abs(null_d) >= np.abs(observed_d)).sum(axis=0)
        perm_p[layer] = np.where(live[layer], (1.0 + exceed) / (1.0 + permutations), 1.0)
        effect[layer] = passes(hedges_g(observed_d, n), observed_c, d_threshold, c_threshold)
    return FeatureNull(feature, n, observed_edges, null_edges, sweep_observed, sweep_null, perm_p, live, effect)


def choose_features(degrees: dict[int, int], count: int | None, seed: int) -> np.ndarray:
    """All features (``count`` None or >= their number), else the study's stratified choice: the ceil(count / 3)
    highest-degree features plus the rest sampled evenly from 8 strata of the remaining features by degree."""
    features = np.array(sorted(degrees), dtype=np.int64)
    if count is None or count >= len(features):
        return features
    if count < 1:
        raise AtlasError("--features must be a positive number or 'all'")
    order = features[np.argsort(-np.array([degrees[int(f)] for f in features]), kind="stable")]
    top = math.ceil(count / 3)
    chosen = list(order[:top])
    strata = [stratum for stratum in np.array_split(order[top:], STRATA) if len(stratum)]
    rng = np.random.default_rng(seed)
    shares = np.array_split(np.arange(count - top), len(strata)) if strata else []
    for stratum, share in zip(strata, shares, strict=True):
        chosen.extend(rng.choice(stratum, size=min(len(share), len(stratum)), replace=False))
    return np.array(sorted(int(f) for f in chosen), dtype=np.int64)


@dataclass
class Calibration:
    """What :func:`calibrate_run` measured: the summary (manifest + Run node) and the per-feature table."""

    summary: dict[str, Any]
    features: pa.Table
    # "perm_p" and "perm_q": source feature -> downstream layer -> (F,) value of every target
    edge_columns: dict[str, dict[int, dict[int, np.ndarray]]] = field(default_factory=dict, repr=False)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _degrees(run_dir: Path, manifest: Manifest) -> dict[int, int]:
    """Edges per traced source feature (n >= 2) from the trace's feature summaries."""
    degrees: dict[int, int] = {}
    for entry in manifest.extra.get("feature_summaries", []):
        path = run_dir / entry["file"]
        if not path.is_file() or file_sha256(path) != entry["sha256"]:
            raise AtlasError(f"{path}: missing or changed since the merge")
        summary = pq.read_table(path).to_pydict()
        for feature, cells, edges in zip(summary["source_feature"], summary["cells_active"], summary["edges"],
                                         strict=True):
            if cells >= 2:
                degrees[feature] = degrees.get(feature, 0) + edges
    return degrees


def _unit_deltas(manifest: Manifest) -> dict[tuple[int, int], list[dict | None]]:
    """The manifest's kept-deltas entry of every unit, by source-feature range (None: that unit kept none)."""
    listed = {entry["unit"]: entry for entry in manifest.extra.get("deltas", [])}
    ranges: dict[tuple[int, int], list[dict]] = {}
    for unit in manifest.extra["plan"]["units"]:
        entry = listed.get(unit["index"])
        ranges.setdefault((unit["first_feature"], unit["end_feature"]), []).append(entry)
    return ranges


def calibrate_run(run_dir: str | Path, *, permutations: int = DEFAULT_PERMUTATIONS, features: int | None = None,
                  seed: int = 0, alpha: float = DEFAULT_ALPHA, progress: Callable[[int], None] | None = None
                  ) -> Calibration:
    """Calibrate a finalized run from its kept deltas and store the result in it (see :func:`write_calibration`).

    ``features`` None calibrates every traced feature, N the study's stratified subset; ``progress`` gets the
    number of features done after each source-feature range.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if not manifest.finalized:
        raise AtlasError(f"run {manifest.run_id} is {manifest.status}: finish it first "
                         f"(`atlas trace merge {run_dir} && atlas trace finalize {run_dir}`)")
    if permutations < 1:
        raise AtlasError("--permutations must be at least 1")
    if not 0 < alpha < 1:
        raise AtlasError("--alpha must be between 0 and 1")
    if not manifest.extra.get("deltas"):
        raise AtlasError(f"run {manifest.run_id} kept no per-cell deltas: trace it with "
                         f"`atlas trace run {run_dir} --keep-deltas` first")
    thresholds = manifest.thresholds
    d_threshold, c_threshold = float(thresholds["cohens_d"]), float(thresholds["consistency"])
    mode = thresholds.get("consistency_definition", "reference")
    degrees = _degrees(run_dir, manifest)
    chosen = choose_features(degrees, features, seed)
    chosen_set = set(chosen.tolist())
    nulls: dict[int, FeatureNull] = {}
    dtypes = set()
    for (first, end), entries in sorted(_unit_deltas(manifest).items()):
        wanted = chosen[(chosen >= first) & (chosen < end)]
        if not len(wanted):
            continue
        if any(entry is None for entry in entries):
            raise AtlasError(f"run {manifest.run_id}: source features {first}..{end - 1} have no kept deltas for "
                             f"every cell range; `atlas trace run {run_dir} --keep-deltas` traces them again")
        files = [read_unit_deltas(run_dir / entry["file"], entry["sha256"]) for entry in entries]
        dtypes |= {str(arrays[key].dtype) for arrays in files for key in arrays if key.startswith("delta.")}
        for feature, kept in sorted(feature_deltas(files, wanted).items()):
            signs = sign_vectors(seed, feature, permutations, kept.n)
            nulls[feature] = feature_null(kept.layers, signs, d_threshold, c_threshold, mode, feature)
        if progress is not None:
            progress(len(nulls))
    missing = sorted(chosen_set - set(nulls))
    if missing:
        raise AtlasError(f"run {manifest.run_id}: no kept deltas for source feature(s) {missing[:5]}")
    calibration = _assemble(manifest, nulls, degrees, permutations, alpha, seed)
    calibration.summary["deltas_dtype"] = ",".join(sorted(dtypes))
    write_calibration(run_dir, manifest, calibration)
    return calibration


def _assemble(manifest: Manifest, nulls: dict[int, FeatureNull], degrees: dict[int, int], permutations: int,
              alpha: float, seed: int) -> Calibration:
    features = sorted(nulls)
    layers = sorted(manifest.downstream_layers)
    family = np.concatenate([nulls[f].perm_p[layer][nulls[f].live[layer]] for f in features for layer in layers])
    effect = np.concatenate([nulls[f].effect[layer][nulls[f].live[layer]] for f in features for layer in layers])
    family_q = benjamini_hochberg(family)
    survives = family_q < alpha
    # Per feature: the q of every target (1 where degenerate), and surviving edges (BH and the effect-size screen).
    q_of: dict[int, dict[int, np.ndarray]] = {}
    surviving: dict[int, int] = {}
    start = 0
    for feature in features:
        null = nulls[feature]
        q_of[feature], surviving[feature] = {}, 0
        for layer in layers:
            live = null.live[layer]
            q = np.ones(len(live))
            q[live] = family_q[start:start + live.sum()]
            surviving[feature] += int((survives[start:start + live.sum()] & effect[start:start + live.sum()]).sum())
            start += int(live.sum())
            q_of[feature][layer] = q
    observed = {f: nulls[f].observed_edges for f in features}
    expected = {f: float(nulls[f].null_edges.mean()) for f in features}
    effect_per_feature = {f: int(sum(nulls[f].effect[layer].sum() for layer in layers)) for f in features}
    deciles = _deciles(features, observed, expected, surviving)
    estimated = _extrapolate(degrees, deciles)
    total_observed, total_null = sum(observed.values()), sum(expected.values())
    diffs = np.array([observed[f] - degrees.get(f, 0) for f in features]) if features else np.zeros(0)
    raw_total = sum(degrees.values())
    summary = {
        "n_features_traced": len(degrees),
        "n_features_calibrated": len(features),
        "total_edges_raw": raw_total,
        "total_edges_raw_calibrated_subset": sum(degrees.get(f, 0) for f in features),
        "total_edges_hedges_g": sum(effect_per_feature.values()),
        "mean_edges_raw": raw_total / len(degrees) if degrees else None,
        "seed": seed, "alpha": alpha, "consistency_definition": manifest.thresholds.get("consistency_definition"),
        "thresholds": {"cohens_d": manifest.thresholds["cohens_d"],
                       "consistency": manifest.thresholds["consistency"]},
        "extrapolated": len(features) < len(degrees),
        "permutation": {
            "n_features": len(features), "n_perm": permutations,
            "observed_edges_subset": total_observed,
            "expected_null_edges_subset": total_null,
            "empirical_fdr_subset": _finite(total_null / total_observed) if total_observed else None,
            "bh_surviving_fraction": float(survives.mean()) if len(survives) else 0.0,
            "bh_surviving_tests": int(survives.sum()), "bh_total_tests": len(family),
            "n_degenerate_targets_excluded": int(sum((~nulls[f].live[layer]).sum() for f in features
                                                     for layer in layers)),
            "effect_size_edges_subset": int(effect.sum()),
            "effect_size_edges_surviving_bh": int((survives & effect).sum()),
            "effect_size_edges_surviving_frac": float((survives & effect).sum() / effect.sum()) if effect.sum()
            else 0.0,
            "surviving_by_degree_decile": deciles,
            "estimated_total_edges_fdr_all_features": int(round(estimated)),
            "estimated_mean_edges_fdr_all_features": estimated / len(degrees) if degrees else None,
        },
        "threshold_sweep_null": {f"d>{d},c>{c}": _mean([nulls[f].sweep_null[d, c] for f in features])
                                 for d in SWEEP_D for c in SWEEP_CONSISTENCY},
        "threshold_sweep": [_sweep_row(nulls, features, d, c) for d in SWEEP_D for c in SWEEP_CONSISTENCY],
        "float16_storage_effect": {
            "mean_signed_diff": float(diffs.mean()) if len(diffs) else 0.0,
            "total_abs_diff_fraction": float(np.abs(diffs).sum() / max(sum(degrees.get(f, 0) for f in features), 1)),
            "max_abs_diff": int(np.abs(diffs).max()) if len(diffs) else 0,
        },
    }
    table = pa.table({
        "run_id": [manifest.run_id] * len(features), "source_layer": [manifest.source_layer] * len(features),
        "source_feature": features, "n": [nulls[f].n for f in features],
        "degree": [degrees.get(f, 0) for f in features], "observed_edges": [observed[f] for f in features],
        "expected_null_edges": [expected[f] for f in features],
        "null_sd": [float(nulls[f].null_edges.std()) for f in features],
        "fdr": [expected[f] / observed[f] if observed[f] else None for f in features],
        "effect_size_edges": [effect_per_feature[f] for f in features],
        "surviving_edges": [surviving[f] for f in features],
    }, schema=FEATURES_SCHEMA)
    return Calibration(summary, table, {"perm_p": {f: nulls[f].perm_p for f in features}, "perm_q": q_of})


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _sweep_row(nulls: dict[int, FeatureNull], features: list[int], d: float, c: float) -> dict[str, Any]:
    observed = _mean([nulls[f].sweep_observed[d, c] for f in features])
    null = _mean([nulls[f].sweep_null[d, c] for f in features])
    return {"d_threshold": d, "consistency_threshold": c, "n_features": len(features), "mean_edges": observed,
            "expected_null_edges_per_feature": null,
            "implied_fdr": _finite(null / observed) if observed else None}


def _deciles(features: list[int], observed: dict[int, int], expected: dict[int, float], surviving: dict[int, int]
             ) -> list[dict[str, Any]]:
    """Calibrated features by observed degree in (up to) ten equal groups: their surviving fraction of edges and
    their empirical FDR (expected null over observed edges)."""
    ranked = sorted(features, key=lambda f: (observed[f], f))
    rows = []
    for chunk in np.array_split(np.array(ranked, dtype=np.int64), min(DECILES, len(ranked))):
        edges = sum(observed[int(f)] for f in chunk)
        rows.append({"n": len(chunk), "min_observed": float(min(observed[int(f)] for f in chunk)),
                     "max_observed": float(max(observed[int(f)] for f in chunk)), "mean_observed": edges / len(chunk),
                     "surviving_ratio": sum(surviving[int(f)] for f in chunk) / edges if edges else 0.0,
                     "empirical_fdr": sum(expected[int(f)] for f in chunk) / edges if edges else None})
    return rows


def _extrapolate(degrees: dict[int, int], deciles: list[dict[str, Any]]) -> float:
    """Calibrated edges of every traced feature: its degree times the surviving ratio of the decile whose range
    holds it (the first decile reaching it; beyond the last, the last)."""
    if not deciles:
        return 0.0
    tops = np.array([row["max_observed"] for row in deciles])
    ratios = np.array([row["surviving_ratio"] for row in deciles])
    values = np.array(list(degrees.values()), dtype=np.float64)
    return float((values * ratios[np.minimum(np.searchsorted(tops, values), len(deciles) - 1)]).sum())


def write_calibration(run_dir: Path, manifest: Manifest, calibration: Calibration) -> None:
    """Add ``perm_p``/``perm_q`` to every edge shard (null on edges of uncalibrated features), write the
    per-feature table and record both, with the summary, in the manifest."""
    perm_p, perm_q = calibration.edge_columns["perm_p"], calibration.edge_columns["perm_q"]
    for record in manifest.shards:
        table = read_shard(run_dir, record, manifest)
        table = table.drop_columns([name for name in CALIBRATION_COLUMNS if name in table.column_names])
        sources = table.column("source_feature").to_numpy()
        layers = table.column("target_layer").to_numpy()
        targets = table.column("target_feature").to_numpy()
        columns = {name: np.full(table.num_rows, np.nan) for name in CALIBRATION_COLUMNS}
        group = (sources.astype(np.int64) << 16) | layers.astype(np.int64)
        order = np.argsort(group, kind="stable")
        keys, starts = np.unique(group[order], return_index=True)
        for key, rows in zip(keys.tolist(), np.split(order, starts[1:]) if len(keys) else [],
                             strict=True):
            source, layer = key >> 16, key & 0xFFFF
            if source in perm_p:
                columns["perm_p"][rows] = perm_p[source][layer][targets[rows]]
                columns["perm_q"][rows] = perm_q[source][layer][targets[rows]]
        for name, values in columns.items():
            table = table.append_column(name, pa.array(values.astype(np.float32), from_pandas=True))
        updated = write_shard(run_dir, record.file, table)
        record.rows, record.sha256 = updated.rows, updated.sha256
    sink = pa.BufferOutputStream()
    pq.write_table(calibration.features, sink, compression="zstd")
    digest = write_file_atomically(run_dir / FEATURES_TABLE, sink.getvalue().to_pybytes())
    manifest.extra = {**manifest.extra, "calibration": {
        "summary": calibration.summary,
        "features": {"file": FEATURES_TABLE, "rows": calibration.features.num_rows, "sha256": digest}}}
    write_manifest(run_dir, manifest)
