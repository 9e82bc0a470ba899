"""Forward passes that experiments need: a clean pass with every hidden state, and a batched resume with edits.

One cell at a time, so every row of a batch has the same length and no attention mask is needed: the rows are
variants (ablations, steering strengths) of the same cell. A resumed pass starts from a cached hidden state after
block ``start`` and runs blocks ``start + 1 .. stop``; an ``edit(layer, hidden)`` callback may change the hidden
state after any block (the edit of the start layer itself is applied before the first block runs).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from transformers import BertForMaskedLM

from atlas.model import encoder_layers

Edit = Callable[[int, torch.Tensor], torch.Tensor]


@torch.no_grad()
def clean_hidden_states(model: BertForMaskedLM, input_ids: np.ndarray, device: torch.device | str = "cpu"
                        ) -> list[torch.Tensor]:
    """Hidden states ``[seq, d_model]`` after every block of one cell: element ``l`` is block ``l``'s output.

    No hooks are involved, so ``hidden_states[l + 1]`` is exactly block ``l``'s output.
    """
    ids = torch.as_tensor(np.asarray(input_ids, dtype=np.int64), device=device)[None]
    states = model.bert(input_ids=ids, output_hidden_states=True).hidden_states
    return [state[0] for state in states[1:]]


@torch.no_grad()
def resume(model: BertForMaskedLM, hidden: torch.Tensor, start: int, stop: int, edit: Edit | None = None
           ) -> torch.Tensor:
    """Run blocks ``start + 1 .. stop`` on ``hidden`` ``[batch, seq, d_model]`` (block ``start``'s output).

    ``edit(layer, hidden)`` is called on the state after each layer ``start .. stop`` and returns the state that
    continues; with no edit this is the plain forward pass of those blocks.
    """
    blocks = encoder_layers(model)
    for layer in range(start, stop + 1):
        if layer > start:
            hidden = blocks[layer](hidden)
        if edit is not None:
            hidden = edit(layer, hidden)
    return hidden


@torch.no_grad()
def output_logits(model: BertForMaskedLM, hidden: torch.Tensor) -> torch.Tensor:
    """Masked-LM output logits ``[..., vocab]`` of last-layer hidden states."""
    return model.cls(hidden)
