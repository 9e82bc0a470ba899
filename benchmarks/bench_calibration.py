"""Calibration benchmark: what `atlas trace calibrate` costs against the trace it calibrates, and what the kept
deltas weigh.

One run directory of a Geneformer-shaped model (default 4 layers, d=128, TopK SAEs of 512 features on every layer,
20 cells of 120-200 gene tokens, the paper's cell count) traced from layer 1 into layers 2 and 3: first without
deltas (the baseline), then the same run, same features, with ``--keep-deltas``; then calibrated with 500
permutations over every traced feature. Prints the trace overhead of keeping deltas, calibration time as a ratio
to the trace, the kept bytes per (source feature x cell) and per value, and what that means for the reference
study's run (4,065 features x 20 cells into 3 x 4,608 targets).

    python benchmarks/bench_calibration.py                  # a few minutes on a 2-core CPU
    python benchmarks/bench_calibration.py --cells 8 --permutations 100
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tiny-model factories live in tests/tiny.py

from atlas.runformat import read_manifest  # noqa: E402
from atlas.trace.calibrate import calibrate_run  # noqa: E402
from atlas.trace.run import TraceConfig, finalize_run, merge_run, plan_run, run_units  # noqa: E402
from atlas.trace.stats import Thresholds  # noqa: E402
from tests.tiny import build_tiny_atlas, save_tiny_bert, save_tiny_cells, tiny_bert, tiny_cells  # noqa: E402

# The reference study's run: 4,065 features, 20 cells, 3 downstream layers of 4,608 features each.
PAPER_FEATURES, PAPER_CELLS, PAPER_TARGETS = 4065, 20, 3 * 4608


def build(root: Path, args: argparse.Namespace) -> TraceConfig:
    cells = tiny_cells(args.seed, args.cells, vocab_size=args.vocab, min_genes=args.min_genes,
                       max_genes=args.max_genes)
    shape = {"n_layers": 4, "d_model": args.d_model, "n_heads": 4, "vocab_size": args.vocab,
             "max_length": args.max_genes + 2}
    build_tiny_atlas(root / "saes", tiny_bert(args.seed, **shape), cells, k=32, steps=30, seed=args.seed)
    return TraceConfig(model=str(save_tiny_bert(root / "model", seed=args.seed, **shape)), saes=str(root / "saes"),
                       cells=str(save_tiny_cells(root / "cells", cells)), source_layer=1, downstream_layers=[2, 3],
                       batch_size=32)


def trace(run_dir: Path, config: TraceConfig, features: np.ndarray, deltas_dtype: str | None) -> float:
    plan_run(run_dir, config, features, thresholds=Thresholds(), features_per_shard=256, cells_per_shard=None,
             cells=config.load_cells(), selection={"method": "list"}, run_id="bench-calibration")
    started = time.perf_counter()
    run_units(run_dir, device="cpu", deltas_dtype=deltas_dtype)
    merge_run(run_dir)
    finalize_run(run_dir)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--min-genes", type=int, default=120)
    parser.add_argument("--max-genes", type=int, default=200)
    parser.add_argument("--permutations", type=int, default=500)
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="bench-calibration-"))
    try:
        config = build(root, args)
        features = np.arange(4 * args.d_model)  # every feature; the plan keeps the ones active in some cell
        baseline = trace(root / "plain", config, features, None)
        kept = trace(root / "kept", config, features, args.dtype)
        started = time.perf_counter()
        summary = calibrate_run(root / "kept", permutations=args.permutations).summary
        calibrating = time.perf_counter() - started
        manifest = read_manifest(root / "kept")
        files = [root / "kept" / entry["file"] for entry in manifest.extra["deltas"]]
        size = sum(path.stat().st_size for path in files)
        rows = manifest.counts["ablated_passes"]  # one kept row per (source feature, cell where it was active)
        targets = 4 * args.d_model * len(config.downstream_layers)  # 4x SAEs on every measured layer
        per_row = size / rows
        per_value = size / (rows * targets)
        permutation = summary["permutation"]
        print(f"fixture: {summary['n_features_traced']} traced features, {args.cells} cells, {rows:,} feature x cell "
              f"rows, {targets:,} targets per row, {manifest.counts['edges']:,} edges")
        print(f"trace without deltas: {baseline:.2f} s   with --keep-deltas ({args.dtype}): {kept:.2f} s   "
              f"overhead x{kept / baseline:.3f}")
        print(f"calibrate ({args.permutations} permutations, every feature): {calibrating:.2f} s   "
              f"= x{calibrating / kept:.3f} of the trace it calibrates (x{calibrating / baseline:.3f} of the plain "
              f"trace)")
        print(f"kept deltas: {size:,} bytes = {per_row:,.0f} bytes per feature x cell = {per_value:.3f} bytes per "
              "value")
        paper = per_value * PAPER_FEATURES * PAPER_CELLS * PAPER_TARGETS
        print(f"reference study's run at this rate: {paper / 1e9:.2f} GB of deltas (upper bound: every feature "
              "active in every cell)")
        print(f"empirical FDR {permutation['empirical_fdr_subset']}, BH surviving fraction "
              f"{permutation['bh_surviving_fraction']:.3f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
