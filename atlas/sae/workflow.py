"""From a model directory and cells to a trained SAE atlas on disk (checkpoints, means, catalogs): `atlas sae train`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from atlas.catalog import write_layer_catalog
from atlas.cells import load_cells, load_dictionary, special_token_ids, token_gene_names
from atlas.errors import AtlasError
from atlas.model import load_model, n_layers, resolve_device
from atlas.ranges import parse_ranges
from atlas.sae.biosae import write_sae
from atlas.sae.train import DEFAULT_SPECIAL_TOKENS, TrainedLayer, TrainingConfig, train_layers


def parse_layers(text: str, layer_count: int) -> list[int]:
    """``all`` or a comma list of layer numbers and ranges (``0,5,11``, ``0-5``) within ``0..layer_count-1``."""
    if text.strip() == "all":
        return list(range(layer_count))
    layers = parse_ranges(text, "layers")
    bad = [layer for layer in layers if not 0 <= layer < layer_count]
    if bad:
        raise AtlasError(f"layers {bad} not in 0..{layer_count - 1}")
    return layers


def write_trained_layers(out_dir: str | Path, trained: Sequence[TrainedLayer]) -> list[dict]:
    """Write each layer's SAE and catalog in the atlas layout; one summary row per layer."""
    rows = []
    for layer in trained:
        layer_dir = write_sae(out_dir, layer.layer, layer.sae)
        write_layer_catalog(layer_dir, layer.catalog)
        rows.append({"layer": layer.layer, "n_features": layer.sae.n_features, "k": layer.sae.k,
                     "alive": layer.catalog.n_alive, "explained_variance": round(layer.explained_variance, 4),
                     "positions": layer.n_positions, "directory": str(layer_dir)})
    return rows


def train_sae_atlas(
    model_dir: str | Path,
    cells_path: str | Path,
    out_dir: str | Path,
    layers: str | Sequence[int],
    config: TrainingConfig,
    *,
    token_dictionary: str | Path | None = None,
    gene_median_dictionary: str | Path | None = None,
    gene_names: str | Path | None = None,
    n_cells: int | None = None,
    max_length: int = 2048,
    device: str = "auto",
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict]:
    """Load the model and cells, train an SAE per layer, write the atlas layout; returns one row per layer.

    ``progress(stage, done, total)`` is called as each training stage advances.
    """
    torch_device = resolve_device(device)
    model = load_model(model_dir, torch_device)
    wanted = parse_layers(layers, n_layers(model)) if isinstance(layers, str) else list(layers)
    tokens = load_dictionary(token_dictionary) if token_dictionary is not None else None
    names = load_dictionary(gene_names, text_values=True) if gene_names is not None else None
    cells = load_cells(cells_path, token_dictionary=tokens, gene_median_dictionary=gene_median_dictionary,
                       max_length=max_length, n_cells=n_cells)
    trained = train_layers(
        model, cells.input_ids, wanted, token_gene_names(tokens, names) if tokens else {}, config,
        special_tokens=special_token_ids(tokens) if tokens else DEFAULT_SPECIAL_TOKENS, device=torch_device,
        progress=progress)
    return write_trained_layers(out_dir, trained)
