"""Synthetic trace runs of the reference study's shape, written as real run directories with `atlas.runformat`.

The reference run traced 4,065 active source features of layer 5 into layers 6, 11 and 17 (4,608 features each)
and kept 1,393,850 significant edges, split 49.8 / 31.8 / 18.4 % by downstream layer, with a heavy-tailed
out-degree (mean about 343, median about 284, max about 2,100, about 1.8 % of sources above 1,000).
:func:`make_synthetic_run` draws a run of that shape (scaled by ``scale``) with statistics that pass the run
format's validation, so loaders, benchmarks and analyses can use it like the output of `atlas trace`::

    from benchmarks.synthetic import make_synthetic_run
    run_dir = make_synthetic_run("/tmp/synthetic", scale=0.01, seed=0)

or from the shell: ``python benchmarks/synthetic.py /tmp/synthetic --scale 1``.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy import special

from atlas import __version__
from atlas.runformat import Manifest, write_manifest, write_shard

REFERENCE_SOURCE_FEATURES = 4065
FEATURES_PER_LAYER = 4608
REFERENCE_LAYERS = 18  # Geneformer V2-316M
REFERENCE_EDGES_BY_LAYER = {6: 694_646, 11: 443_381, 17: 255_823}  # 1,393,850 in all
REFERENCE_MEDIAN_DEGREE = 284
REFERENCE_MEAN_DEGREE = 343
REFERENCE_MAX_DEGREE = 2138
N_CELLS = 20
THRESHOLDS = {"cohens_d": 0.5, "consistency": 0.7, "consistency_definition": "reference"}


def _out_degrees(rng: np.random.Generator, n_sources: int, total: int, max_degree: int) -> np.ndarray:
    """Lognormal out-degrees with the reference median and mean, capped, rescaled to sum exactly to ``total``."""
    sigma = math.sqrt(2 * math.log(REFERENCE_MEAN_DEGREE / REFERENCE_MEDIAN_DEGREE))
    raw = rng.lognormal(math.log(REFERENCE_MEDIAN_DEGREE), sigma, n_sources)
    degrees = np.clip(np.rint(raw * total / raw.sum()), 1, max_degree).astype(np.int64)
    # Hand the rounding and capping remainder out one edge at a time to sources that still have room.
    while (remainder := total - int(degrees.sum())) != 0:
        room = degrees < max_degree if remainder > 0 else degrees > 1
        chosen = rng.choice(np.flatnonzero(room), size=min(abs(remainder), int(room.sum())), replace=False)
        degrees[chosen] += int(np.sign(remainder))
    return degrees


def _edge_statistics(rng: np.random.Generator, count: int, finalized: bool, m_tests: int) -> dict[str, np.ndarray]:
    """Significant-looking edge statistics: |d| > 0.5, consistency > 0.7 over 20 cells, t-test p, optional BH q."""
    excitatory = rng.random(count) < 0.55
    cohens_d = (0.5 + rng.exponential(0.6, count) + 1e-3) * np.where(excitatory, 1.0, -1.0)
    std = rng.lognormal(-3.0, 0.8, count)
    consistency = rng.integers(15, N_CELLS + 1, count) / N_CELLS
    t_statistic = np.abs(cohens_d) * math.sqrt(N_CELLS)
    p = np.clip(2 * special.stdtr(N_CELLS - 1, -t_statistic), 0.0, 1.0)
    columns = {
        "d": cohens_d, "mean": cohens_d * std, "std": std, "consistency": consistency,
        "n": np.full(count, N_CELLS), "p": p,
    }
    if finalized:
        order = np.argsort(p, kind="stable")
        ranked = p[order] * m_tests / np.arange(1, count + 1)
        q = np.empty(count)
        q[order] = np.minimum.accumulate(ranked[::-1])[::-1]
        columns["q"] = np.clip(q, 0.0, 1.0)
    return columns


def make_synthetic_run(
    out_dir: str | Path,
    scale: float = 1.0,
    seed: int = 0,
    *,
    run_id: str | None = None,
    model: str = "synthetic",
    sae: str = "x4k32",
    source_layer: int = 5,
    downstream_layers: tuple[int, ...] = (6, 11, 17),
    features_per_shard: int = 512,
    finalized: bool = True,
    edges_by_layer: dict[int, int] | None = None,
) -> Path:
    """Write a run directory of the reference shape scaled by ``scale`` (edges and source features) and return it.

    Deterministic for a given ``seed``. ``downstream_layers`` takes the reference layer shares in order
    (49.8 / 31.8 / 18.4 %); the run id defaults to ``synthetic-L{source_layer}-s{seed}``. ``edges_by_layer``
    (downstream layer -> edges) replaces both for other shapes (benchmarks/bench_atlas_scale.py); the out-degree
    keeps the reference's median/mean/max proportions.
    """
    if edges_by_layer is None and len(downstream_layers) != len(REFERENCE_EDGES_BY_LAYER):
        raise ValueError(f"downstream_layers needs {len(REFERENCE_EDGES_BY_LAYER)} layers, got {downstream_layers}")
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_id = run_id or f"synthetic-L{source_layer:02d}-s{seed}"
    n_sources = max(1, round(REFERENCE_SOURCE_FEATURES * scale))
    if edges_by_layer is None:
        by_layer = {layer: max(1, round(edges * scale))
                    for layer, edges in zip(downstream_layers, REFERENCE_EDGES_BY_LAYER.values(), strict=True)}
        max_degree = REFERENCE_MAX_DEGREE
    else:
        by_layer = dict(edges_by_layer)
        downstream_layers = tuple(by_layer)
        max_degree = round(REFERENCE_MAX_DEGREE * sum(by_layer.values()) / n_sources / REFERENCE_MEAN_DEGREE)
    total = sum(by_layer.values())
    max_degree = min(max_degree, FEATURES_PER_LAYER * len(downstream_layers))
    if total > n_sources * max_degree:
        raise ValueError(f"scale {scale} leaves too few source features for {total} edges")

    sources = np.sort(rng.choice(FEATURES_PER_LAYER, size=n_sources, replace=False)).astype(np.int32)
    degrees = _out_degrees(rng, n_sources, total, max_degree)
    # Exact per-layer totals: shuffle the layer of every edge slot, then cut the slots by source.
    slot_layers = rng.permutation(np.repeat(np.array(list(by_layer)), list(by_layer.values())))
    bounds = np.concatenate([[0], np.cumsum(degrees)])
    popularity = rng.lognormal(0.0, 1.0, FEATURES_PER_LAYER)  # heavy-tailed in-degree as well
    popularity /= popularity.sum()
    source_column, layer_column, target_column = [], [], []
    for position, source in enumerate(sources):
        layers, counts = np.unique(slot_layers[bounds[position]:bounds[position + 1]], return_counts=True)
        for layer, count in zip(layers, counts, strict=True):
            room = min(int(count), FEATURES_PER_LAYER)
            targets = np.sort(rng.choice(FEATURES_PER_LAYER, size=room, replace=False, p=popularity))
            source_column.append(np.full(room, source, dtype=np.int32))
            layer_column.append(np.full(room, layer, dtype=np.int16))
            target_column.append(targets.astype(np.int32))
    source_features = np.concatenate(source_column)
    target_layers = np.concatenate(layer_column)
    target_features = np.concatenate(target_column)
    m_tests = n_sources * FEATURES_PER_LAYER * len(downstream_layers)
    stats = _edge_statistics(rng, len(source_features), finalized, m_tests)

    manifest = Manifest(
        run_id=run_id, model=model, sae=sae, source_layer=source_layer, downstream_layers=list(downstream_layers),
        n_cells=N_CELLS, cell_set_digest=hashlib.sha256(f"synthetic-cells-{seed}".encode()).hexdigest(),
        thresholds=dict(THRESHOLDS), kind="trace", status="finalized" if finalized else "complete",
        code_version=__version__, created_at="2026-01-01T00:00:00+00:00",
        extra={"synthetic": {"scale": scale, "seed": seed}},
        model_layers=max(REFERENCE_LAYERS, max(downstream_layers) + 1),
        sae_features={str(layer): FEATURES_PER_LAYER for layer in (source_layer, *downstream_layers)},
    )
    first_features = list(range(0, FEATURES_PER_LAYER, features_per_shard))
    bounds = np.searchsorted(source_features, [*first_features, FEATURES_PER_LAYER])
    for first_feature, start, stop in zip(first_features, bounds[:-1], bounds[1:], strict=True):
        if start == stop:
            continue
        table = pa.table({
            "run_id": pa.array([run_id] * int(stop - start), pa.string()),
            "source_layer": np.full(stop - start, source_layer, dtype=np.int16),
            "source_feature": source_features[start:stop],
            "target_layer": target_layers[start:stop],
            "target_feature": target_features[start:stop],
            **{name: values[start:stop] for name, values in stats.items()},
        })
        record = write_shard(out, f"edges-{first_feature:05d}.parquet", table)
        record.source_features = [first_feature, min(first_feature + features_per_shard, FEATURES_PER_LAYER)]
        record.cells = [0, N_CELLS]
        manifest.shards.append(record)
    manifest.counts = {
        "edges": total, "source_features": n_sources,
        "edges_per_layer": {str(layer): count for layer, count in by_layer.items()},
    }
    write_manifest(out, manifest)
    return out


def degree_summary(degrees: np.ndarray) -> dict[str, float]:
    """Mean, median, max and share above 1,000 of an out-degree array (to compare with the reference)."""
    return {"mean": float(degrees.mean()), "median": float(np.median(degrees)), "max": int(degrees.max()),
            "share_above_1000": float((degrees > 1000).mean())}


def ensure_synthetic_run(run_dir: Path, scale: float, seed: int) -> None:
    """Write the synthetic run at ``run_dir`` unless it is there (a benchmark's set-up, printing how long it took)."""
    if (run_dir / "manifest.json").is_file():
        return
    started = time.perf_counter()
    # The reference-sized run keeps the generator's default id; smaller ones are named after their scale.
    run_id = None if scale == 1 else f"synthetic-L05-s{seed}-scale{scale:g}"
    make_synthetic_run(run_dir, scale=scale, seed=seed, run_id=run_id)
    print(f"setup: synthetic run written in {time.perf_counter() - started:.1f} s")


def add_run_arguments(parser: argparse.ArgumentParser, run_dir: Path | None, run_dir_help: str | None = None) -> None:
    """The options that choose a benchmark's synthetic run: --scale, --seed and --run-dir (default ``run_dir``)."""
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the reference run (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=run_dir, help=run_dir_help)


def main() -> None:
    """Write a synthetic run from the command line and print its shape."""
    import pyarrow.parquet as pq

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the reference run (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run_dir = make_synthetic_run(args.out_dir, scale=args.scale, seed=args.seed)
    table = pq.read_table(sorted(run_dir.glob("edges-*.parquet")), columns=["source_feature", "target_layer"])
    sources = table.column("source_feature").to_numpy()
    _, degrees = np.unique(sources, return_counts=True)
    layers, per_layer = np.unique(table.column("target_layer").to_numpy(), return_counts=True)
    print(f"{run_dir}: {len(sources):,} edges from {len(degrees):,} source features")
    print("edges by layer:", {int(layer): int(count) for layer, count in zip(layers, per_layer, strict=True)})
    print("out-degree:", degree_summary(degrees))


if __name__ == "__main__":
    main()
