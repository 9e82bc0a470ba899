"""A small Geneformer-shaped ``BertForMaskedLM`` trained briefly by masked-gene prediction, cached on disk.

Geneformer's objective: hide 15% of the gene tokens of each rank-value-encoded cell and predict them from the
rest. The architecture follows Geneformer (post-LN BERT, ReLU, no token types used, pad id 0), only smaller.
The trained model is saved as a Hugging Face directory next to a ``demo_model.json`` key (data digest + config);
a second run with the same key loads it instead of training.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM

from atlas.demo.data import MASK_ID, PAD_ID
from atlas.model import load_model

KEY_FILE = "demo_model.json"


@dataclass(frozen=True)
class ModelConfig:
    """Shape and training budget of the demo model."""

    n_layers: int = 4
    d_model: int = 64
    n_heads: int = 4
    max_length: int = 128
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 2e-3
    mask_fraction: float = 0.15
    seed: int = 0


def masked_batch(cells: Sequence[np.ndarray], mask_fraction: float, n_specials: int, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded input ids with ``mask_fraction`` of gene tokens replaced by <mask>, attention mask, and labels."""
    width = max(len(cell) for cell in cells)
    ids = torch.full((len(cells), width), PAD_ID, dtype=torch.long)
    attention = torch.zeros((len(cells), width), dtype=torch.long)
    for row, cell in enumerate(cells):
        ids[row, : len(cell)] = torch.as_tensor(cell)
        attention[row, : len(cell)] = 1
    genes = ids >= n_specials
    chosen = genes & (torch.rand(ids.shape, generator=generator) < mask_fraction)
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    return torch.where(chosen, torch.full_like(ids, MASK_ID), ids), attention, labels


def train_masked_gene_model(cells: Sequence[np.ndarray], vocab_size: int, config: ModelConfig, n_specials: int = 4,
                            progress: Callable[[int, float], None] | None = None) -> BertForMaskedLM:
    """Train a fresh ``BertForMaskedLM`` on masked-gene prediction; ``progress(epoch, mean loss)`` after each epoch."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    bert_config = BertConfig(
        vocab_size=vocab_size, hidden_size=config.d_model, num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads, intermediate_size=4 * config.d_model, hidden_act="relu",
        max_position_embeddings=config.max_length, pad_token_id=PAD_ID, type_vocab_size=2,
        hidden_dropout_prob=0.02, attention_probs_dropout_prob=0.02)
    model = BertForMaskedLM(bert_config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.001)
    steps = config.epochs * -(-len(cells) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.learning_rate, total_steps=max(steps, 1),
                                                   pct_start=0.1)
    # sorting by length keeps padding small; batches are shuffled, cells within a batch are neighbours in length
    by_length = sorted(range(len(cells)), key=lambda index: len(cells[index]))
    batches = [by_length[start:start + config.batch_size] for start in range(0, len(cells), config.batch_size)]
    for epoch in range(config.epochs):
        losses = []
        for batch in torch.randperm(len(batches), generator=generator).tolist():
            ids, attention, labels = masked_batch([cells[i] for i in batches[batch]], config.mask_fraction,
                                                  n_specials, generator)
            loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        if progress is not None:
            progress(epoch + 1, float(np.mean(losses)))
    return model.eval()


def cached_demo_model(directory: str | Path, cells: Sequence[np.ndarray], cells_digest: str, vocab_size: int,
                      config: ModelConfig, progress: Callable[[int, float], None] | None = None
                      ) -> tuple[Path, bool]:
    """The demo model directory, trained unless a model for the same cells and config is cached; (path, trained?)."""
    directory = Path(directory)
    key = {"cells_digest": cells_digest, "vocab_size": vocab_size, "config": asdict(config)}
    key_file = directory / KEY_FILE
    if key_file.is_file() and json.loads(key_file.read_text()) == key and (directory / "config.json").is_file():
        return directory, False
    key_file.unlink(missing_ok=True)
    model = train_masked_gene_model(cells, vocab_size, config, progress=progress)
    model.save_pretrained(directory)
    key_file.write_text(json.dumps(key, indent=2))  # written last: a half-saved model is never taken as cached
    return directory, True


def masked_gene_accuracy(model_dir: str | Path, cells: Sequence[np.ndarray], n_specials: int = 4, seed: int = 1
                         ) -> float:
    """Top-1 accuracy of predicting masked genes (15%) on ``cells``: how much the model learnt."""
    model = load_model(model_dir)
    generator = torch.Generator().manual_seed(seed)
    correct = total = 0
    with torch.no_grad():
        for start in range(0, len(cells), 32):
            ids, attention, labels = masked_batch(cells[start:start + 32], 0.15, n_specials, generator)
            predicted = model(input_ids=ids, attention_mask=attention).logits.argmax(dim=-1)
            chosen = labels != -100
            correct += int((predicted[chosen] == labels[chosen]).sum())
            total += int(chosen.sum())
    return correct / max(total, 1)
