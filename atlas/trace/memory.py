"""How many ablated variants of a cell fit in one forward: the batch size chosen from the device's free memory.

The engine's working set grows linearly with the batch: every variant carries its own residual stream through the
remaining blocks and its own SAE codes at each measured layer. Everything else (model, SAEs, the cell's clean
codes) is already resident when the choice is made, so the free memory measured then is what the batch may use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from atlas.errors import AtlasError
from atlas.trace.setup import TraceSetup

# Share of the free memory the batch may take: the rest absorbs allocator fragmentation, the clean pass of the next
# cell and, on a host, everything else running there.
FREE_SHARE = {"cuda": 0.8, "mps": 0.6, "cpu": 0.6}
# Beyond this, larger batches no longer make a forward faster (the GEMMs are already large) and cost latency.
MAX_BATCH = 256
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class BatchChoice:
    """The batch size used for ablated passes and why."""

    size: int
    reason: str


def parse_size(text: str) -> int:
    """Bytes from ``8GiB``, ``512M``, ``1.5g`` or a plain number of bytes."""
    match = _SIZE.match(text)
    if not match:
        raise AtlasError(f"cannot read {text!r} as a memory size (e.g. 8GiB, 512MiB)")
    number, unit = float(match.group(1)), match.group(2).upper()
    return int(number * 1024 ** "_KMGT".index(unit or "_"))


def format_size(size: float) -> str:
    """``12.3 GiB`` style, for messages."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _host_available() -> int:
    """MemAvailable, lowered to the cgroup's remaining allowance when the process runs under a limit (SLURM, k8s)."""
    available = None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit, usage = Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")
    if limit.is_file() and usage.is_file() and limit.read_text().strip().isdigit():
        available = min(available, int(limit.read_text()) - int(usage.read_text()))
    return max(available, 0)


def free_memory(device: torch.device) -> int:
    """Bytes the device can still allocate now."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory() - torch.mps.current_allocated_memory())
    return _host_available()


def resident_memory(device: torch.device) -> int:
    """Bytes this process already holds on the device (the host: its resident set)."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.current_allocated_memory())
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def bytes_per_variant(setup: TraceSetup, length: int) -> int:
    """Peak bytes one ablated variant of a ``length``-token cell adds to a forward.

    Per block: the residual stream and its copies (query, key, value, attention output, projections, layer norm: ten
    ``d``-wide rows per token) and the MLP's two ``intermediate``-wide activations; with eager attention also the
    score and probability matrices (scaled-dot-product attention never materialises them). At a measured layer the
    active rows are encoded in the SAE's precision: pre-activations, codes and their change against the clean codes
    (four ``n_features``-wide rows per token). Blocks and encodes run one after another, so the larger counts.
    """
    config = setup.model.config
    model_element = next(setup.model.parameters()).element_size()
    block = 10 * config.hidden_size + 2 * config.intermediate_size
    if config._attn_implementation == "eager":
        block += 2 * config.num_attention_heads * length
    measured = [setup.saes[layer] for layer in setup.downstream_layers]
    encode = max((4 * sae.n_features + sae.d_model) * sae.W_dec.element_size() for sae in measured)
    return length * max(block * model_element, encode)


def choose_batch_size(setup: TraceSetup, length: int, max_memory: int | None = None) -> BatchChoice:
    """The largest power of two (at most :data:`MAX_BATCH`) whose variants fit in free memory.

    ``max_memory`` caps what the whole process may hold on the device (what is resident counts against it).
    Powers of two keep the choice stable when free memory moves a little between runs, so a rerun on the same
    machine uses the same batch (and produces the same bits).
    """
    device = setup.device
    share = FREE_SHARE.get(device.type, 0.6)
    free = free_memory(device)
    usable, where = int(free * share), f"{format_size(free)} free on {device.type}, {share:.0%} of it"
    if max_memory is not None:
        allowed = int((max_memory - resident_memory(device)) * share)
        if allowed < usable:
            usable, where = allowed, f"--max-memory {format_size(max_memory)}, {share:.0%} of what is not resident"
    per_variant = bytes_per_variant(setup, length)
    fits = max(usable, 0) // per_variant
    if fits < 1:
        raise AtlasError(f"one ablated variant of a {length}-token cell needs about {format_size(per_variant)}, "
                         f"more than the {format_size(max(usable, 0))} available ({where}); use a device with more "
                         "memory, a smaller --max-length, or --precision bf16")
    size = min(MAX_BATCH, 1 << (int(fits).bit_length() - 1))
    return BatchChoice(size, f"auto from {where}: ~{format_size(per_variant)} per variant at {length} tokens")
