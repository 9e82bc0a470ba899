"""The reference engine: the naive per-(feature, cell) design of the reference study, followed literally.

For every cell: a full forward pass; for every selected feature active in the cell: a full SAE decode with and
without the feature, the difference added to the clean hidden state at gene positions, a forward hook on the source
block replacing its output, a second *full* forward pass (all layers and the MLM head), and SAE encodes of the clean
and ablated hidden states at every gene position of every measured layer. It exists to check the batched engine's
results and to measure its speed-up, never for production runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from atlas.trace.setup import TraceSetup
from atlas.trace.stats import WelfordState


@torch.no_grad()
def reference_trace_cells(setup: TraceSetup, features, cells: Iterable[np.ndarray], *,
                          state: WelfordState | None = None, progress: Callable[[int], None] | None = None
                          ) -> WelfordState:
    """Trace ``features`` over ``cells`` the slow, literal way; returns (and extends) the Welford state."""
    features = setup.check_features(features)
    if state is None:
        state = WelfordState.empty(features, setup.layer_widths, setup.device)
    model, sae = setup.model, setup.source_sae
    source_block = setup.blocks()[setup.source_layer]
    for tokens in cells:
        ids, gene_positions = setup.input_ids(tokens)
        if not gene_positions.numel():
            continue
        mask = torch.ones_like(ids)
        clean = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        clean_hidden = clean.hidden_states[setup.source_layer + 1][0]
        codes, active_at = sae.encode_active(clean_hidden[gene_positions].to(sae.W_dec.dtype), setup.active)
        clean_downstream = {layer: clean.hidden_states[layer + 1][0][gene_positions]
                            for layer in setup.downstream_layers}
        for feature in features:
            active = active_at[:, feature]
            if not active.any():
                continue
            ablated_codes = codes.clone()
            ablated_codes[:, feature] = 0
            delta = sae.decode(ablated_codes) - sae.decode(codes)
            modified = clean_hidden.clone()
            modified[gene_positions] = clean_hidden[gene_positions] + delta.to(modified.dtype)
            handle = source_block.register_forward_hook(lambda _module, _inputs, _output, m=modified: m[None])
            try:
                ablated = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            finally:
                handle.remove()
            observed = {}
            for layer in setup.downstream_layers:
                # Trap: with a hook on block s, hidden_states[s + 1] still shows the clean output; the states of the
                # blocks after s (all measured layers here) are computed from the replacement.
                downstream = setup.saes[layer]
                clean_layer = downstream.encode(clean_downstream[layer].to(downstream.W_dec.dtype))
                ablated_layer = downstream.encode(
                    ablated.hidden_states[layer + 1][0][gene_positions].to(downstream.W_dec.dtype))
                per_position = (ablated_layer - clean_layer)[active]
                observed[layer] = per_position.to(state.mean[layer].dtype).mean(dim=0, keepdim=True)
            state.update(state.rows([feature]), observed)
            if progress is not None:
                progress(1)
    return state
