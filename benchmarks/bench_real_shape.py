"""Tracing at Geneformer V2-316M's exact shape on this machine: memory bounded, attention memory-efficient.

1. `atlas trace plan` + `atlas trace run --max-memory 8GiB` (auto batch size) of a few source features of layer 5
   into layers 6, 11 and 17 on one 2,048-token cell, random weights; prints the batch it chose, ablated passes/s and
   the peak resident memory of the run against the 8 GiB bound.
2. One V2-316M block over one 4,096-token sequence with scaled-dot-product attention (what `load_model` uses) and
   with eager attention, each in its own process: peak resident memory side by side (the baseline is eager).

    python benchmarks/bench_real_shape.py                 # ~10 min on 2 cores
    python benchmarks/bench_real_shape.py --features 0-3  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.real_shape import V2_316M, random_model, write_inputs  # noqa: E402

GIB = 1 << 30


def _peak_rss_of(command: list[str]) -> tuple[float, int, str]:
    """Run ``command`` in a fresh process; its wall time, its own peak resident set (bytes) and its stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)  # this child's rusage alone, not the maximum over all children
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(command[:6])} ... failed:\n{err.read()[-2000:]}")
        return elapsed, usage.ru_maxrss * 1024, out.read()


def block_peak(attention: str, tokens: int) -> None:
    """Child process: one block of V2-316M's width over one sequence; prints nothing, its peak RSS is measured."""
    model = random_model(0, num_hidden_layers=1, max_position_embeddings=tokens)
    model.config._attn_implementation = attention
    with torch.no_grad():
        hidden = torch.randn(1, tokens, V2_316M["hidden_size"])
        model.bert.encoder.layer[0](hidden)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="0-7", help="Source features of layer 5 to trace.")
    parser.add_argument("--tokens", type=int, default=2048, help="Cell length of the trace.")
    parser.add_argument("--max-memory", default="8GiB", help="Bound for the trace process.")
    parser.add_argument("--workdir", type=Path, help="Keep inputs here (reused by later runs).")
    parser.add_argument("--block", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.block:
        block_peak(args.block, args.tokens)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-real-shape-"))
    started = time.perf_counter()
    write_inputs(workdir, [5, 6, 11, 17], args.tokens)
    print(f"inputs (V2-316M shape, random weights, SAEs 4,608 x k=32, 1 cell x {args.tokens} tokens): "
          f"{time.perf_counter() - started:.1f} s in {workdir}")
    atlas = [sys.executable, "-c", "from atlas.cli import main; main()"]
    run_dir = workdir / f"run-{int(time.time())}"
    plan = [*atlas, "trace", "plan", "--model", str(workdir / "model"), "--saes", str(workdir / "saes"),
            "--cells", str(workdir / "cells"), "--source-layer", "5", "--downstream", "6,11,17", "--features",
            args.features, "--max-length", str(args.tokens), "--out", str(run_dir), "--json"]
    subprocess.run(plan, check=True, capture_output=True)
    run = [*atlas, "trace", "run", str(run_dir), "--device", "cpu", "--max-memory", args.max_memory, "--quiet",
           "--json"]
    elapsed, peak, out = _peak_rss_of(run)
    result = json.loads(out)
    bound = int(args.max_memory.lower().removesuffix("gib")) * GIB if args.max_memory.lower().endswith("gib") else None
    print(f"trace run: {result['ablated_passes']} ablated passes (batch {result['batch_size']}) in {elapsed:.1f} s "
          f"= {result['ablated_passes_per_s']} passes/s; {result['edges']} edges")
    verdict = "" if bound is None else f" -> {'within' if peak <= bound else 'OVER'} {args.max_memory}"
    print(f"trace run peak resident memory: {peak / GIB:.2f} GiB{verdict}")
    script = [sys.executable, str(Path(__file__).resolve()), "--tokens", "4096", "--block"]
    _, sdpa_peak, _ = _peak_rss_of([*script, "sdpa"])
    _, eager_peak, _ = _peak_rss_of([*script, "eager"])
    print(f"one V2-316M block, 4,096 tokens, peak resident memory: sdpa {sdpa_peak / GIB:.2f} GiB, "
          f"eager {eager_peak / GIB:.2f} GiB (baseline) -> sdpa uses {sdpa_peak / eager_peak:.2f}x")


if __name__ == "__main__":
    main()
