"""GPU check of the tracing engine at the reference study's shape (run by gpu_check.sh on a machine with a GPU).

1. Per-ablated-pass time of the paper workload's shape (V2-316M, random weights, source layer 5 -> 6, 11, 17, one
   2,048-token cell, 4,608-feature SAEs) in fp32 (TF32 off), fp32 with TF32 on, and bf16; the batch size is the
   engine's own choice from free memory.
2. Edges of bf16 and TF32 against strict fp32 on a small fixture (6 layers, d=256, 20 cells): the same significant
   edges? (Jaccard of the edge sets and the largest |d| difference of the shared ones).
3. The projected time of the whole paper workload (4,065 features x 20 cells, every feature counted active in every
   cell: an upper bound) at each precision, next to the reference study's 17.7 hours.

    python benchmarks/gpu_check.py --device cuda
    python benchmarks/gpu_check.py --device cpu --quick    # a smoke test of the script itself
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atlas.trace.engine import clean_pass, trace_cells  # noqa: E402
from atlas.trace.memory import choose_batch_size  # noqa: E402
from atlas.trace.setup import TraceSetup  # noqa: E402
from atlas.trace.stats import Thresholds, layer_statistics, significant  # noqa: E402
from benchmarks.real_shape import N_FEATURES, K, random_cells, random_model, random_sae  # noqa: E402

PAPER_FEATURES, PAPER_CELLS, REFERENCE_HOURS = 4065, 20, 17.7
PRECISIONS = {"fp32": (torch.float32, False), "fp32+tf32": (torch.float32, True), "bf16": (torch.bfloat16, True)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def build_inputs(source: int, downstream: list[int], n_features: int, cells: list[np.ndarray], **shape: int
                 ) -> tuple[torch.nn.Module, dict]:
    """A random model (fp32, CPU) and random SAEs of the source and downstream layers, centred on the first cell."""
    model = random_model(0, **shape)
    hidden = model(input_ids=torch.as_tensor(cells[0])[None], output_hidden_states=True).hidden_states
    return model, {layer: random_sae(hidden[layer + 1][0], n_features, K, layer) for layer in [source, *downstream]}


def on_device(model: torch.nn.Module, saes: dict, source: int, downstream: list[int], device: torch.device,
              dtype: torch.dtype) -> TraceSetup:
    """A trace setup with a copy of the model in ``dtype`` and the SAEs in fp32 (as the atlas ships them)."""
    return TraceSetup(copy.deepcopy(model).to(device=device, dtype=dtype),
                      {layer: copy.deepcopy(sae).to(device) for layer, sae in saes.items()}, source, downstream,
                      device=device)


def set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def time_per_pass(device: torch.device, tokens: int, n_variants: int, shape: dict) -> dict[str, tuple[float, int]]:
    """Seconds per ablated pass and the batch chosen, per precision, at the given shape."""
    cells = random_cells(1, tokens, shape.get("vocab_size", 20275))
    model, saes = build_inputs(5, [6, 11, 17], N_FEATURES, cells, **shape)
    results = {}
    for name, (dtype, tf32) in PRECISIONS.items():
        set_tf32(tf32)
        setup = on_device(model, saes, 5, [6, 11, 17], device, dtype)
        ids, genes = setup.input_ids(cells[0])
        codes = setup.source_sae.encode(clean_pass(setup, ids, [5])[5][genes].float())
        active = torch.nonzero((codes > 0).any(dim=0)).squeeze(1).cpu().numpy()[:n_variants]
        batch = choose_batch_size(setup, tokens).size
        trace_cells(setup, active[:batch], cells, batch_size=batch)  # warm-up: kernels, allocator
        _sync(device)
        started = time.perf_counter()
        state = trace_cells(setup, active, cells, batch_size=batch)
        _sync(device)
        passes = int(state.n.sum())
        results[name] = ((time.perf_counter() - started) / max(passes, 1), batch)
        print(f"  {name:10s} batch {batch:4d}: {passes} ablated passes, "
              f"{results[name][0] * 1e3:.1f} ms per pass", flush=True)
        del setup
        if device.type == "cuda":
            torch.cuda.empty_cache()
    set_tf32(False)
    return results


def edge_agreement(device: torch.device, n_cells: int, shape: dict) -> None:
    """Significant edges at each precision against strict fp32 on a small fixture."""
    cells = random_cells(n_cells, 258, shape["vocab_size"])
    model, saes = build_inputs(1, [2, 5], 1024, cells, **shape)
    edges, d_values = {}, {}
    for name, (dtype, tf32) in PRECISIONS.items():
        set_tf32(tf32)
        setup = on_device(model, saes, 1, [2, 5], device, dtype)
        state = trace_cells(setup, np.arange(1024), cells, batch_size=64)
        found, values = set(), {}
        for layer in state.layers:
            stats = layer_statistics(state, layer, "reference")
            rows, targets = np.nonzero(significant(stats, Thresholds()))
            for row, target in zip(rows.tolist(), targets.tolist(), strict=True):
                key = (int(stats.source_features[row]), layer, target)
                found.add(key)
                values[key] = float(stats.cohens_d[row, target])
        edges[name], d_values[name] = found, values
    set_tf32(False)
    strict = edges["fp32"]
    for name in ("fp32+tf32", "bf16"):
        other = edges[name]
        shared = strict & other
        jaccard = len(shared) / max(len(strict | other), 1)
        worst = max((abs(d_values["fp32"][key] - d_values[name][key]) for key in shared), default=0.0)
        print(f"  {name:10s} vs fp32: {len(other)} vs {len(strict)} edges, Jaccard {jaccard:.4f}, "
              f"max |d| difference on shared edges {worst:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--variants", type=int, default=512, help="Ablated variants timed per precision.")
    parser.add_argument("--quick", action="store_true", help="A small shape, to check the script on a CPU.")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: CUDA is not available on this machine")
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    big = {"num_hidden_layers": 18, "hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 512,
           "vocab_size": 2048} if args.quick else {}
    tokens, variants = (130, 8) if args.quick else (2048, args.variants)
    print(f"1. per ablated pass, paper shape{' (quick: small)' if args.quick else ''}, {tokens} tokens:")
    per_pass = time_per_pass(device, tokens, variants, big)
    print("2. edges against strict fp32 (6 layers, d=256, 1,024-feature SAEs, 256-gene cells):")
    small = {"num_hidden_layers": 6, "hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024,
             "vocab_size": 4096, "max_position_embeddings": 512}
    edge_agreement(device, 4 if args.quick else 20, small)
    print(f"3. projected paper workload ({PAPER_FEATURES} features x {PAPER_CELLS} cells, all active: upper bound):")
    for name, (seconds, _) in per_pass.items():
        hours = seconds * PAPER_FEATURES * PAPER_CELLS / 3600
        print(f"  {name:10s}: {hours:.2f} h = {REFERENCE_HOURS / hours:.0f}x faster than the reference's "
              f"{REFERENCE_HOURS} h")


if __name__ == "__main__":
    main()
