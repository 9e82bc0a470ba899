"""Real cells for the demo: the 700 PBMCs that ship inside scanpy, as an .h5ad plus Geneformer-style dictionaries.

``scanpy.datasets.pbmc68k_reduced()`` reads a file inside the scanpy package (no download): 700 cells of the
10x Genomics "Fresh 68k PBMCs (Donor A)" data set (Zheng et al. 2017, Nature Communications), with ``.raw``
holding log1p-normalised expression of 765 genes. ``expm1`` recovers per-cell normalised expression, which is all
rank-value encoding needs (it normalises per cell anyway). The genes carry symbols only, so the demo vocabulary
is keyed by symbol where Geneformer's is keyed by Ensembl id; the encoding code path is the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atlas.cells import CLS_TOKEN, EOS_TOKEN, TARGET_SUM

SPECIAL_TOKENS = ("<pad>", "<mask>", CLS_TOKEN, EOS_TOKEN)
PAD_ID, MASK_ID = 0, 1
SOURCE = "scanpy.datasets.pbmc68k_reduced (10x Genomics Fresh 68k PBMCs Donor A, Zheng et al. 2017), .raw"


@dataclass(frozen=True)
class DemoData:
    """Where the demo's cells and dictionaries are on disk."""

    h5ad: Path
    token_dictionary: Path
    gene_median_dictionary: Path
    n_cells: int
    n_genes: int


def pbmc_expression():
    """The bundled PBMCs as an AnnData of normalised expression (``expm1`` of ``.raw``), cell-type labels in obs."""
    import anndata
    import scanpy as sc

    reduced = sc.datasets.pbmc68k_reduced()
    raw = reduced.raw.to_adata()
    raw.X = raw.X.expm1() if hasattr(raw.X, "expm1") else np.expm1(raw.X)
    return anndata.AnnData(X=raw.X.astype(np.float32), obs=reduced.obs[["bulk_labels"]].copy(),
                           var=raw.var[[]].copy())


def gene_medians(expression) -> dict[str, float]:
    """Geneformer's gene medians: per gene, the median over cells that express it of count / cell total * 10,000."""
    matrix = expression.X.tocsc() if hasattr(expression.X, "tocsc") else None
    totals = np.asarray(expression.X.sum(axis=1)).ravel()
    medians = {}
    for column, gene in enumerate(expression.var_names):
        if matrix is not None:
            rows = matrix.indices[matrix.indptr[column]:matrix.indptr[column + 1]]
            values = matrix.data[matrix.indptr[column]:matrix.indptr[column + 1]]
        else:
            values = np.asarray(expression.X[:, column]).ravel()
            rows = np.flatnonzero(values)
            values = values[rows]
        expressed = values > 0
        if expressed.any():
            medians[str(gene)] = float(np.median(values[expressed] / totals[rows[expressed]] * TARGET_SUM))
    return medians


def token_dictionary(genes: list[str]) -> dict[str, int]:
    """Special tokens 0-3 as in Geneformer V2, then one token per gene in the given order."""
    tokens = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    tokens.update({gene: len(SPECIAL_TOKENS) + index for index, gene in enumerate(genes)})
    return tokens


def write_demo_data(directory: str | Path) -> DemoData:
    """Write the PBMC .h5ad and its token and gene-median dictionaries (JSON) under ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    expression = pbmc_expression()
    medians = gene_medians(expression)
    genes = [str(gene) for gene in expression.var_names if str(gene) in medians]
    paths = DemoData(directory / "pbmc.h5ad", directory / "token_dictionary.json",
                     directory / "gene_median_dictionary.json", expression.n_obs, len(genes))
    expression.uns["source"] = SOURCE
    expression.write_h5ad(paths.h5ad)
    paths.token_dictionary.write_text(json.dumps(token_dictionary(genes), indent=1))
    paths.gene_median_dictionary.write_text(json.dumps(medians, indent=1))
    return paths
