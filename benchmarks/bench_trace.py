"""Tracing benchmark: the batched engine against the literal reference engine on the same inputs, in one run.

A Geneformer-shaped model (default 6 layers, d=256, vocabulary 4,096 so the MLM head costs about one layer, as in
Geneformer V2), random TopK SAEs of 1,024 features (k=32, centred by the real activation mean) on every layer, cells
of 256-384 gene tokens; active features of layer 1 traced into layers 2-5. Prints wall-clock speed-up, FLOPs each
engine executed (counted with torch's FlopCounterMode in a separate pass) and their ratio, the engine's achieved
FLOP/s as a fraction of plain torch.matmul FLOP/s measured in the same run, and the projected time of the reference
study's workload on one H100 from the validated FLOP model.

    python benchmarks/bench_trace.py               # a few minutes on a 2-core CPU
    python benchmarks/bench_trace.py --features 64 --cells 2
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tiny-model factories live in tests/tiny.py

from atlas.trace.engine import trace_cells  # noqa: E402
from atlas.trace.reference import reference_trace_cells  # noqa: E402
from atlas.trace.setup import TraceSetup  # noqa: E402
from atlas.trace.stats import Thresholds, WelfordState, layer_statistics, significant  # noqa: E402
from tests.tiny import FIRST_GENE, fit_tiny_sae, layer_activations, tiny_bert  # noqa: E402

# The reference study's workload: Geneformer V2-316M, all 4,065 active L5 features x 20 cells into L6, L11, L17.
PAPER = {"layers": 18, "d_model": 1152, "intermediate": 4608, "vocab": 20275, "tokens": 2048, "n_features": 4608,
         "k": 32, "source": 5, "downstream": (6, 11, 17), "features": 4065, "cells": 20}
REFERENCE_HOURS = 17.7
H100_BF16_PEAK = 800e12
UTILISATION = 0.5


def layer_flops(tokens: int, d_model: int, intermediate: int) -> float:
    """Matmul FLOPs of one BERT block over one sequence: Q, K, V, O and the two MLP projections, plus attention."""
    return 2 * tokens * (4 * d_model * d_model + 2 * d_model * intermediate) + 4 * tokens * tokens * d_model


def encode_flops(rows: float, d_model: int, n_features: int) -> float:
    """An SAE encode (or decode) of ``rows`` vectors."""
    return 2 * rows * d_model * n_features


def engine_flops(shape: dict, cells: int, passes: int, active_rows: float) -> float:
    """Engine: per cell one clean pass to the last measured layer plus clean encodes of the source and measured
    layers; per ablated pass only layers s+1..last; encodes only at the rows where the source feature is active."""
    layer = layer_flops(shape["tokens"], shape["d_model"], shape["intermediate"])
    measured = len(shape["downstream"])
    last, source = max(shape["downstream"]), shape["source"]
    genes = shape["tokens"] - 2
    per_cell = (last + 1) * layer + (1 + measured) * encode_flops(genes, shape["d_model"], shape["n_features"])
    return (cells * per_cell + passes * (last - source) * layer
            + measured * encode_flops(active_rows, shape["d_model"], shape["n_features"]))


def reference_flops(shape: dict, cells: int, passes: int) -> float:
    """Reference: per cell a full forward and a source encode; per ablated pass a full forward with the MLM head,
    two full decodes, and clean plus ablated encodes of every gene position at every measured layer."""
    tokens, d_model = shape["tokens"], shape["d_model"]
    full = shape["layers"] * layer_flops(tokens, d_model, shape["intermediate"]) + (
        2 * tokens * d_model * d_model + 2 * tokens * d_model * shape["vocab"])
    genes = tokens - 2
    sae = encode_flops(genes, d_model, shape["n_features"])
    return cells * (full + sae) + passes * (full + 2 * sae + 2 * len(shape["downstream"]) * sae)


def build(args: argparse.Namespace) -> tuple[TraceSetup, list[np.ndarray], np.ndarray]:
    torch.manual_seed(args.seed)
    model = tiny_bert(args.seed, n_layers=args.layers, d_model=args.d_model, n_heads=args.d_model // 64,
                      vocab_size=args.vocab, max_length=args.length + 2)
    rng = np.random.default_rng(args.seed)
    cells = [np.concatenate([[2], rng.permutation(args.vocab - FIRST_GENE)[:args.length] + FIRST_GENE, [3]])
             for _ in range(args.cells)]
    activations, _ = layer_activations(model, cells, list(range(args.layers)))
    saes = {layer: fit_tiny_sae(activations[layer], args.n_features, args.k, args.seed + layer, steps=0)
            for layer in range(args.layers)}
    setup = TraceSetup(model, saes, 1, list(range(2, args.layers)))
    with torch.no_grad():
        frequency = np.zeros(args.n_features)
        for layer_cells in [activations[1]]:
            frequency += (saes[1].encode(layer_cells) > 0).float().mean(dim=0).numpy()
    active = np.flatnonzero(frequency >= 0.001)
    return setup, cells, active[:args.features]


def timed_and_counted(function, *args, **kwargs):
    """Run once, timing the wall clock and counting every executed FLOP (the counter's per-op dispatch cost is
    microseconds against millisecond-scale ops, and it is charged to the engine being measured)."""
    with FlopCounterMode(display=False) as counter:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return result, Seconds(seconds, cpu_seconds), counter.get_total_flops()


@dataclass
class Seconds:
    """Wall-clock and process CPU seconds (CPU time is robust to other processes sharing the cores)."""

    wall: float
    cpu: float


def matmul_rates(rows: int, d_model: int, intermediate: int, seconds: float = 3.0) -> Seconds:
    """Sustained plain torch.matmul FLOP per wall second and per CPU second on the engine's dominant shape
    (rows x d) @ (d x intermediate), over ``seconds`` of back-to-back calls (sustained, not a best-of)."""
    left, right = torch.randn(rows, d_model), torch.randn(d_model, intermediate)
    torch.matmul(left, right)
    calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        torch.matmul(left, right)
        calls += 1
    flops = 2 * rows * d_model * intermediate * calls
    return Seconds(flops / (time.perf_counter() - start), flops / (time.process_time() - cpu_start))


def compare(batched: WelfordState, reference: WelfordState, thresholds: Thresholds
            ) -> tuple[int, int, dict[str, float]]:
    """(edges of the engine, pairs on either side of the |d| threshold only by rounding, max |diff| per statistic
    over the edges both engines find)."""
    edges, ties = 0, 0
    worst = dict.fromkeys(("mean", "std", "consistency", "p"), 0.0)
    assert torch.equal(batched.n, reference.n)
    for layer in batched.layers:
        a, b = layer_statistics(batched, layer), layer_statistics(reference, layer)
        mask_a, mask_b = significant(a, thresholds), significant(b, thresholds)
        differ = mask_a != mask_b
        if (np.abs(np.abs(a.cohens_d[differ]) - thresholds.cohens_d) > 1e-6).any():
            raise SystemExit(f"edges differ between engines at layer {layer}")
        ties += int(differ.sum())
        edges += int(mask_a.sum())
        both = mask_a & mask_b
        for name in worst:
            worst[name] = max(worst[name], float(np.abs(getattr(a, name)[both] - getattr(b, name)[both]).max(
                initial=0.0)))
    return edges, ties, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--n-features", type=int, default=1024, help="SAE features per layer")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--length", type=int, default=320, help="gene tokens per cell (plus CLS and EOS)")
    parser.add_argument("--cells", type=int, default=2)
    parser.add_argument("--features", type=int, default=48, help="active layer-1 features traced")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    setup, cells, features = build(args)
    shape = {"layers": args.layers, "d_model": args.d_model, "intermediate": 4 * args.d_model, "vocab": args.vocab,
             "tokens": args.length + 2, "n_features": args.n_features, "k": args.k, "source": 1,
             "downstream": tuple(setup.downstream_layers)}
    print(f"model: {args.layers} layers, d={args.d_model}, vocab {args.vocab}; SAEs {args.n_features} features, "
          f"k={args.k}; {args.cells} cells x {args.length + 2} tokens; {len(features)} active L1 features -> "
          f"L{setup.downstream_layers[0]}-L{setup.downstream_layers[-1]}; batch {args.batch_size}; "
          f"{torch.get_num_threads()} threads")

    trace_cells(setup, features[:4], cells[:1], batch_size=args.batch_size)              # warm-up
    reference_trace_cells(setup, features[:1], cells[:1])
    matmul_shape = (args.batch_size * (args.length + 2), args.d_model, 4 * args.d_model)
    before = matmul_rates(*matmul_shape)
    batched, engine_time, engine_counted = timed_and_counted(trace_cells, setup, features, cells,
                                                             batch_size=args.batch_size)
    after = matmul_rates(*matmul_shape)                                             # around the engine's run
    matmul = Seconds((before.wall + after.wall) / 2, (before.cpu + after.cpu) / 2)
    reference, reference_time, reference_counted = timed_and_counted(reference_trace_cells, setup, features, cells)
    passes = int(batched.n.sum())
    edges, ties, worst = compare(batched, reference, Thresholds())

    active_rows = 0
    with torch.no_grad():
        for tokens in cells:
            ids, genes = setup.input_ids(tokens)
            hidden = setup.model(input_ids=ids, output_hidden_states=True).hidden_states[2][0][genes]
            active_rows += int((setup.source_sae.encode(hidden)[:, torch.as_tensor(features)] > 0).sum())
    engine_model = engine_flops(shape, len(cells), passes, active_rows)
    reference_model = reference_flops(shape, len(cells), passes)

    print(f"ablated passes: {passes} (feature x cell where the feature is active)")
    print(f"edges: {edges} significant edges, identical in both engines "
          f"({ties} pairs with |d| exactly on the 0.5 threshold fall either side by rounding); "
          f"max |diff| on common edges: mean {worst['mean']:.1e}, std {worst['std']:.1e}, consistency "
          f"{worst['consistency']:.1e}, p {worst['p']:.1e} (p only moves where std ~ 1e-6 makes d ill-conditioned)")
    print(f"wall clock: reference {reference_time.wall:.2f} s, engine {engine_time.wall:.2f} s -> speed-up "
          f"{reference_time.wall / engine_time.wall:.2f}x; engine {passes / engine_time.wall:.1f} ablated passes/s, "
          f"reference {passes / reference_time.wall:.1f}")
    print(f"process CPU time: reference {reference_time.cpu:.2f} s, engine {engine_time.cpu:.2f} s -> "
          f"{reference_time.cpu / engine_time.cpu:.2f}x")
    print(f"FLOPs counted: reference {reference_counted / 1e9:.1f} G, engine {engine_counted / 1e9:.1f} G -> "
          f"ratio {reference_counted / engine_counted:.2f}x (FLOP model: {reference_model / 1e9:.1f} G, "
          f"{engine_model / 1e9:.1f} G)")
    for clock in ("wall", "cpu"):
        rate = getattr(matmul, clock)
        engine_rate = engine_counted / getattr(engine_time, clock)
        reference_rate = reference_counted / getattr(reference_time, clock)
        print(f"achieved per {clock} second: engine {engine_rate / 1e9:.1f} GFLOP/s = {engine_rate / rate:.2f} of "
              f"torch.matmul ({rate / 1e9:.1f} GFLOP/s sustained on {matmul_shape[0]}x{matmul_shape[1]} @ "
              f"{matmul_shape[1]}x{matmul_shape[2]}); reference {reference_rate / 1e9:.1f} GFLOP/s = "
              f"{reference_rate / rate:.2f}")

    paper_passes = PAPER["features"] * PAPER["cells"]
    # Rows where a feature is active: an average feature fires at k / n_features of the positions.
    paper_rows = paper_passes * (PAPER["tokens"] - 2) * PAPER["k"] / PAPER["n_features"]
    paper_engine = engine_flops(PAPER, PAPER["cells"], paper_passes, paper_rows)
    paper_reference = reference_flops(PAPER, PAPER["cells"], paper_passes)
    rate = H100_BF16_PEAK * UTILISATION
    print(f"paper workload (V2-316M, {PAPER['features']} features x {PAPER['cells']} cells, L5 -> 6/11/17, "
          f"{PAPER['tokens']} tokens): engine {paper_engine / 1e15:.1f} PFLOP, reference design "
          f"{paper_reference / 1e15:.1f} PFLOP ({paper_reference / paper_engine:.2f}x)")
    print(f"projected on one H100 at {UTILISATION:.0%} of {H100_BF16_PEAK / 1e12:.0f} TFLOP/s bf16: engine "
          f"{paper_engine / rate / 60:.1f} min (reference design at the same rate {paper_reference / rate / 60:.1f} "
          f"min) vs the reference's measured {REFERENCE_HOURS} h on a laptop GPU "
          f"({REFERENCE_HOURS * 3600 / (paper_engine / rate):.0f}x)")


if __name__ == "__main__":
    main()
