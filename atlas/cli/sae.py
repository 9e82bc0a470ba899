"""`atlas sae`: train TopK SAEs on a model's residual stream, in the public SAE atlas layout with feature catalogs."""

from __future__ import annotations

from pathlib import Path

import click

from atlas.cli.output import StageBars, emit_json, emit_table


@click.group()
def sae() -> None:
    """Sparse autoencoders of a model's residual stream.

    \b
    Example:
      atlas sae train --model ./Geneformer-V2-316M --cells cells.dataset --layers 5,6,11,17 --out ./saes
    """


@sae.command()
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path),
              help="Hugging Face BertForMaskedLM directory (e.g. a local Geneformer-V2-316M).")
@click.option("--cells", "cells_path", required=True, type=click.Path(path_type=Path),
              help="Tokenized Geneformer dataset directory, or an .h5ad (then pass both dictionaries).")
@click.option("--token-dictionary", type=click.Path(path_type=Path), help="Geneformer token dictionary (.pkl/.json).")
@click.option("--gene-median-dictionary", type=click.Path(path_type=Path),
              help="Geneformer gene-median dictionary (.pkl/.json); needed for .h5ad cells.")
@click.option("--gene-names", type=click.Path(path_type=Path),
              help="Geneformer gene name -> Ensembl id dictionary, to name top genes by symbol.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Root directory; one layerNN_xE_kK directory per layer is written under it.")
@click.option("--layers", default="all", show_default=True, help="Layers to train: all, 0,5,11 or 0-5.")
@click.option("--expansion", default=4, show_default=True, help="Features per residual dimension.")
@click.option("-k", "--k", "k", default=32, show_default=True, help="Active features per position.")
@click.option("--epochs", default=5, show_default=True, help="Passes over the sampled activations.")
@click.option("--batch-size", default=4096, show_default=True, help="Positions per optimiser step.")
@click.option("--lr", "learning_rate", default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--max-positions", default=500_000, show_default=True,
              help="At most this many gene positions per layer are sampled for training (the catalog sees all).")
@click.option("--n-cells", type=int, help="Use the first N cells (default: all).")
@click.option("--max-length", default=2048, show_default=True, help="Truncate cells to this many tokens.")
@click.option("--top-genes", default=20, show_default=True, help="Top genes per feature in the catalog.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--seed", default=0, show_default=True, help="Seed of sampling and initialisation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def train(model_dir: Path, cells_path: Path, token_dictionary: Path | None, gene_median_dictionary: Path | None,
          gene_names: Path | None, out_dir: Path, layers: str, expansion: int, k: int, epochs: int, batch_size: int,
          learning_rate: float, max_positions: int, n_cells: int | None, max_length: int, top_genes: int,
          device: str, seed: int, as_json: bool) -> None:
    """Train one TopK SAE per layer (centred inputs, unit-norm decoder rows) and write checkpoints + catalogs.

    \b
    Writes OUT/layerNN_x{expansion}_k{k}/{sae_final.pt, activation_mean.npy, feature_catalog.json,
    feature_annotations.json}: the layout `atlas trace` and `atlas annotate` read.

    \b
    Example:
      atlas sae train --model ./Geneformer-V2-316M --cells pbmc.h5ad \\
          --token-dictionary token_dictionary_gc104M.pkl --gene-median-dictionary gene_median_dictionary_gc104M.pkl \\
          --layers 5,6,11,17 --n-cells 2000 --out ./saes
    """
    from atlas.sae.train import TrainingConfig
    from atlas.sae.workflow import train_sae_atlas

    config = TrainingConfig(expansion=expansion, k=k, epochs=epochs, batch_size=batch_size,
                            learning_rate=learning_rate, max_positions=max_positions, top_genes=top_genes, seed=seed)
    rows = train_sae_atlas(model_dir, cells_path, out_dir, layers, config, token_dictionary=token_dictionary,
                           gene_median_dictionary=gene_median_dictionary, gene_names=gene_names, n_cells=n_cells,
                           max_length=max_length, device=device, progress=StageBars(not as_json))
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, title=f"SAEs written under {out_dir}")
