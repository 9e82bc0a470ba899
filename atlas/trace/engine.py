"""The batched tracing engine (DESIGN.md section 6): exact results of the reference design at a fraction of the work.

Per cell:
1. one clean pass through layers 0..last measured layer, caching the source hidden state and the clean SAE codes of
   every measured layer (the reference recomputes both for every feature);
2. the source SAE code ``z`` and where each feature is active (``setup.active``: among the encoder's top-k, or
   positive); the delta of zeroing feature ``f`` is ``-z[:, f] (outer) W_dec[f]`` (the decoder bias
   cancels), added to the *original* hidden state at gene positions;
3. ablated variants of the cell (one per active source feature, ``batch_size`` at a time, same length so no
   padding) resume at layer s+1 from the cached state and stop at the last measured layer;
4. at each measured layer only the rows where the variant's source feature was active are encoded; their change
   against the cached clean codes is averaged per variant and folded into Welford accumulators on the device.
   A variant whose code is 0 wherever it is active (a top-k member that ReLU zeroed) changes nothing: its change
   is exactly 0, as in the reference, rather than the float noise of a batched forward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from atlas.trace.setup import TraceSetup
from atlas.trace.stats import WelfordState

Progress = Callable[[int], None]
# Receives each batch's source features (S,) and their per-cell mean changes {layer: (S, F)} (kept deltas).
Observer = Callable[[torch.Tensor, dict[int, torch.Tensor]], None]


@torch.no_grad()
def clean_pass(setup: TraceSetup, ids: torch.Tensor, layers: Iterable[int]) -> dict[int, torch.Tensor]:
    """Hidden states ``(T, d)`` of ``layers`` from one forward that stops at the last of them."""
    wanted = set(layers)
    blocks = setup.blocks()
    hidden = setup.model.bert.embeddings(input_ids=ids)
    captured = {}
    for layer in range(max(wanted) + 1):
        hidden = blocks[layer](hidden)
        if layer in wanted:
            captured[layer] = hidden[0]
    return captured


def _encode(setup: TraceSetup, layer: int, hidden: torch.Tensor) -> torch.Tensor:
    sae = setup.saes[layer]
    return sae.encode(hidden.to(sae.W_dec.dtype))


@torch.no_grad()
def trace_cells(setup: TraceSetup, features, cells: Iterable[np.ndarray], *, batch_size: int = 32,
                state: WelfordState | None = None, progress: Progress | None = None,
                observe: Observer | None = None) -> WelfordState:
    """Trace ``features`` of the source layer over ``cells``; returns (and extends) the Welford state.

    ``observe`` also receives every per-cell observation that goes into the state (for a permutation null).
    """
    features = setup.check_features(features)
    if state is None:
        state = WelfordState.empty(features, setup.layer_widths, setup.device)
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    selected = torch.as_tensor(features, device=setup.device)
    state_rows = state.rows(features)
    directions = setup.source_sae.W_dec[selected]                       # (S, d)
    dead_direction = ~directions.ne(0).any(dim=1)                       # zero decoder row: ablation changes nothing
    for tokens in cells:
        _trace_one_cell(setup, tokens, selected, state_rows, directions, dead_direction, batch_size, state, progress,
                        observe)
    return state


def _trace_one_cell(setup: TraceSetup, tokens: np.ndarray, selected: torch.Tensor, state_rows: torch.Tensor,
                    directions: torch.Tensor, dead_direction: torch.Tensor, batch_size: int, state: WelfordState,
                    progress: Progress | None, observe: Observer | None) -> None:
    ids, gene_positions = setup.input_ids(tokens)
    if not gene_positions.numel():
        return
    source_layer, measured = setup.source_layer, setup.downstream_layers
    cached = clean_pass(setup, ids, [source_layer, *measured])
    source = cached[source_layer]                                                     # (T, d)
    sae = setup.source_sae
    all_codes, all_active = sae.encode_active(source[gene_positions].to(sae.W_dec.dtype), setup.active)
    codes, active = all_codes[:, selected], all_active[:, selected]                   # (G, S)
    no_push = ~codes.ne(0).any(dim=0)                                                 # (S,)
    variants = torch.nonzero(active.any(dim=0)).squeeze(1)                            # columns of selected
    if not variants.numel():
        return
    clean_codes = {layer: _encode(setup, layer, cached[layer][gene_positions]) for layer in measured}
    blocks = setup.blocks()
    length = ids.shape[1]
    # Source code of every selected feature at every position (zero at CLS/EOS), so each variant's delta is one
    # broadcast product added to the cached state: no per-variant copy or scatter of hidden states.
    full_codes = torch.zeros(length, codes.shape[1], dtype=codes.dtype, device=codes.device)
    full_codes[gene_positions] = codes
    for chunk in variants.split(batch_size):
        size = len(chunk)
        chunk_active = active[:, chunk].T                                             # (b, G)
        delta = -full_codes[:, chunk].T.unsqueeze(2) * directions[chunk].unsqueeze(1)  # (b, T, d)
        hidden = source + delta.to(source.dtype)
        variant_of_row, gene_of_row = torch.nonzero(chunk_active, as_tuple=True)
        flat_rows = variant_of_row * length + gene_positions[gene_of_row]
        # Row r of the measured change belongs to variant variant_of_row[r]; averaging is one small matmul.
        averaging = torch.zeros(size, len(variant_of_row), dtype=codes.dtype, device=codes.device)
        averaging[variant_of_row, torch.arange(len(variant_of_row), device=codes.device)] = 1.0
        averaging /= chunk_active.sum(dim=1, keepdim=True)
        observed = {}
        for layer in range(source_layer + 1, setup.last_layer + 1):
            hidden = blocks[layer](hidden)
            if layer not in clean_codes:
                continue
            ablated = _encode(setup, layer, hidden.reshape(size * length, -1)[flat_rows])   # (R, F)
            mean_change = averaging @ (ablated - clean_codes[layer][gene_of_row])
            mean_change[dead_direction[chunk] | no_push[chunk]] = 0
            observed[layer] = mean_change
        state.update(state_rows[chunk], observed)
        if observe is not None:
            observe(selected[chunk], observed)
        if progress is not None:
            progress(size)
