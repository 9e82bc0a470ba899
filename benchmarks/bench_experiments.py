"""Experiments benchmark: batched combinatorial ablation and steering against the hook-and-rerun reference.

A Geneformer-shaped model (default 6 layers, d=128, vocabulary 1,024), briefly fitted TopK SAEs (512 features,
k=16) on layers 1-2, cells of 150-250 gene tokens. Timed in one run on the same inputs:

- ablation of ``--sets`` triplets (layers 1-2, target the last layer; 7 conditions each): the reference
  (``atlas.experiments.reference``: one full forward with hooks per condition and cell), the engine one condition
  per forward (``batch_size=1``), and the engine batched (``batch_size=64``); plus the largest difference of the
  mean changes between the reference and the batched engine;
- steering of ``--features`` layer-1 features at three alphas: the reference (a full forward per feature, alpha
  and cell), the engine with ``batch_size=1`` and batched (``batch_size=32``); pseudotime is given, so only the
  forward passes are compared.

    python benchmarks/bench_experiments.py                 # about a minute on a 2-core CPU
    python benchmarks/bench_experiments.py --cells 4 --sets 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tiny-model factories live in tests/tiny.py

from atlas.experiments.ablation import ablate  # noqa: E402
from atlas.experiments.features import FeatureRef, FeatureSet  # noqa: E402
from atlas.experiments.reference import reference_ablation_changes, reference_steered_logits  # noqa: E402
from atlas.experiments.steering import steer  # noqa: E402
from tests.tiny import FIRST_GENE, fit_tiny_sae, layer_activations, tiny_bert  # noqa: E402


def _cells(count: int, vocab: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.concatenate([[2], rng.permutation(np.arange(FIRST_GENE, vocab))[:rng.integers(150, 251)], [3]])
            .astype(np.int64) for _ in range(count)]


def _timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def _frequent(model, cells, sae, layer: int, count: int) -> list[int]:
    activations, _ = layer_activations(model, cells, [layer])
    with torch.no_grad():
        frequency = (sae.encode(activations[layer]) > 0).float().mean(0)
    return torch.argsort(frequency, descending=True)[:count].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--cells", type=int, default=6)
    parser.add_argument("--sets", type=int, default=3, help="triplets to ablate")
    parser.add_argument("--features", type=int, default=4, help="layer-1 features to steer")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocab, target = 1024, args.layers - 1
    model = tiny_bert(seed=0, n_layers=args.layers, d_model=args.d_model, n_heads=4, vocab_size=vocab,
                      max_length=256)
    cells = _cells(args.cells, vocab, seed=1)
    activations, _ = layer_activations(model, cells, [1, 2, target])
    saes = {layer: fit_tiny_sae(activations[layer], 512, 16, seed=layer, steps=10) for layer in (1, 2, target)}
    first, second = _frequent(model, cells, saes[1], 1, 2 * args.sets), _frequent(model, cells, saes[2], 2, args.sets)
    sets = [FeatureSet(f"t{i}", (FeatureRef(1, first[2 * i]), FeatureRef(1, first[2 * i + 1]),
                                 FeatureRef(2, second[i]))) for i in range(args.sets)]
    print(f"model: {args.layers} layers, d={args.d_model}, vocab {vocab}; {args.cells} cells of 150-250 genes; "
          f"SAEs 512 features k=16; torch threads {args.threads}")

    def reference_ablation():
        # the study's definition: each condition over its own members' active positions
        return [[reference_ablation_changes(model, saes, cells, [s.members[i] for i in range(3) if mask >> i & 1],
                                            target).mean(0)
                 for mask in range(1, 8)] for s in sets]

    reference, t_reference = _timed(reference_ablation)
    single, t_single = _timed(lambda: ablate(model, saes, cells, sets, target, batch_size=1))
    batched, t_batched = _timed(lambda: ablate(model, saes, cells, sets, target, batch_size=64))
    difference = max(float(np.abs(effect.mean[1:] - np.stack(means)).max())
                     for effect, means in zip(batched.effects, reference, strict=True))
    print(f"\nablation: {args.sets} triplets x 7 conditions x {args.cells} cells, target layer {target}")
    print(f"  reference (hook + full forward per condition): {t_reference:8.2f} s")
    print(f"  engine, one condition per forward:             {t_single:8.2f} s   speed-up "
          f"{t_reference / t_single:5.2f}x")
    print(f"  engine, batched (64 per forward):              {t_batched:8.2f} s   speed-up "
          f"{t_reference / t_batched:5.2f}x")
    print(f"  max |mean change| difference, engine vs reference: {difference:.2e}")

    features = [FeatureRef(1, index) for index in first[:args.features]]
    alphas = [0.0, 2.0, 4.0]
    pseudotime = np.arange(float(args.cells))

    def reference_steering():
        return [reference_steered_logits(model, saes[1], cell, feature, alpha)
                for feature in features for alpha in [1.0, *alphas] for cell in cells]

    _, t_steer_reference = _timed(reference_steering)
    # every cell steered, as the reference loop above does
    protocol = {"pseudotime": pseudotime, "groups": "extremes", "extreme_fraction": 0.34, "steer_cells": "all"}
    _, t_steer_single = _timed(lambda: steer(model, saes, cells, features=features, alphas=alphas, batch_size=1,
                                             **protocol))
    _, t_steer_batched = _timed(lambda: steer(model, saes, cells, features=features, alphas=alphas, batch_size=32,
                                              **protocol))
    print(f"\nsteering: {args.features} features x {len(alphas)} alphas x {args.cells} cells (layer 1)")
    print(f"  reference (hook + full forward per variant):   {t_steer_reference:8.2f} s")
    print(f"  engine, one variant per forward:               {t_steer_single:8.2f} s   speed-up "
          f"{t_steer_reference / t_steer_single:5.2f}x")
    print(f"  engine, batched (32 per forward):              {t_steer_batched:8.2f} s   speed-up "
          f"{t_steer_reference / t_steer_batched:5.2f}x")


if __name__ == "__main__":
    main()
