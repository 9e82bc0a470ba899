"""Cells as model input: a tokenized Geneformer dataset, or an `.h5ad` rank-value encoded with Geneformer dictionaries.

Geneformer's rank-value encoding: each cell's counts are normalised by its total count (to 10,000), divided by the
gene's median over the pre-training corpus, and the expressed genes ranked by that value, highest first; the token
sequence is ``<cls>`` + ranked gene tokens + ``<eos>``, truncated to the model's input size. The reference study's
code applies ``log1p`` to the normalised counts before dividing by the medians (``normalization="log1p"``), which
changes the ranking; Geneformer's own tokenizer does not (``"geneformer"``, the default).

Which cells: ``sample=N, seed=S`` draws N rows at random (numpy's legacy ``RandomState(S).choice`` without
replacement, sorted, as the reference study drew its 2,000 control cells with seed 42; every row when the file has
no more than N), then ``n_cells`` keeps the first of them. The dictionaries that
ship with Geneformer are pickles; we read them with a restricted unpickler that builds only plain dicts, strings and
numbers, so a pickle that would run code is refused, and JSON works too.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atlas.errors import AtlasError

TARGET_SUM = 10_000.0
NORMALIZATIONS = ("geneformer", "log1p")
CLS_TOKEN = "<cls>"
EOS_TOKEN = "<eos>"
# var columns that may hold Ensembl ids (the Geneformer tokenizer uses `ensembl_id`; 10x/scanpy files `gene_ids`).
GENE_ID_COLUMNS = ("ensembl_id", "gene_ids", "gene_id")
_CHUNK_CELLS = 1024


@dataclass(frozen=True)
class Cells:
    """Token sequences of a cell set, one int64 array per cell (with CLS/EOS when the vocabulary has them)."""

    input_ids: list[np.ndarray]
    digest: str
    source: str
    rows: np.ndarray | None = None  # which rows of the source the cells are, in order

    @property
    def n_cells(self) -> int:
        """How many cells the set holds."""
        return len(self.input_ids)


def cells_digest(input_ids: Sequence[np.ndarray]) -> str:
    """A SHA-256 over the token sequences (order, lengths and values), stable across machines and runs."""
    sha = hashlib.sha256()
    for ids in input_ids:
        sequence = np.ascontiguousarray(ids, dtype="<i8")
        sha.update(np.int64(sequence.size).astype("<i8").tobytes())
        sha.update(sequence.tobytes())
    return sha.hexdigest()


class _PlainUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings and numbers only; numpy numeric scalars are allowed, every other global refused."""

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "scalar":
            return _numeric_scalar
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain dicts of strings and numbers")


def _numeric_scalar(dtype: np.dtype, data: bytes) -> float | int:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or not isinstance(data, bytes):
        raise pickle.UnpicklingError(f"refusing a numpy scalar of dtype {dtype!r}: only numbers are allowed")
    return np.frombuffer(data, dtype=dtype, count=1)[0].item()


def load_dictionary(source: str | Path | Mapping, *, text_values: bool = False) -> dict:
    """A Geneformer dictionary from a `.json` file, a plain pickle, or a mapping; values numbers (or text if asked)."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if not path.is_file():
        raise AtlasError(f"dictionary file not found: {path}")
    raw = path.read_bytes()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            data = _PlainUnpickler(io.BytesIO(raw)).load()
    except (pickle.UnpicklingError, json.JSONDecodeError, UnicodeDecodeError, EOFError, ValueError) as error:
        raise AtlasError(f"cannot read dictionary {path}: {error}") from None
    if not isinstance(data, dict):
        raise AtlasError(f"{path} holds a {type(data).__name__}, expected a dict of gene id -> value")
    wanted = (str,) if text_values else (int, float)
    for key, value in data.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, wanted):
            kind = "text" if text_values else "number"
            raise AtlasError(f"{path}: entry {key!r}: {value!r} is not a string -> {kind} pair")
    return data


def load_cells(
    path: str | Path,
    *,
    token_dictionary: str | Path | Mapping | None = None,
    gene_median_dictionary: str | Path | Mapping | None = None,
    max_length: int = 2048,
    n_cells: int | None = None,
    sample: int | None = None,
    seed: int = 42,
    normalization: str = "geneformer",
) -> Cells:
    """Token sequences of a tokenized dataset directory or an `.h5ad`: all cells, or a seeded random `sample` of
    them, then the first `n_cells`; `.h5ad` counts are encoded under `normalization` (see the module docstring)."""
    path = Path(path)
    if max_length < 3:
        raise AtlasError(f"max_length must be at least 3, got {max_length}")
    for name, value in (("n_cells", n_cells), ("sample", sample)):
        if value is not None and value < 1:
            raise AtlasError(f"{name} must be positive, got {value}")
    if normalization not in NORMALIZATIONS:
        raise AtlasError(f"normalization {normalization!r} is not one of {', '.join(NORMALIZATIONS)}")
    chosen: list[np.ndarray] = []

    def rows_of(total: int) -> np.ndarray:
        chosen.append(choose_rows(total, sample, seed, n_cells))
        return chosen[0]

    if path.is_dir():
        tokens = load_dictionary(token_dictionary) if token_dictionary is not None else None
        input_ids = _read_tokenized_dataset(path, rows_of, max_length, tokens)
    elif path.is_file() and path.suffix.lower() == ".h5ad":
        if token_dictionary is None or gene_median_dictionary is None:
            raise AtlasError(f"{path} is an .h5ad: pass the token dictionary and the gene-median dictionary too")
        input_ids = _encode_h5ad(
            path, load_dictionary(token_dictionary), load_dictionary(gene_median_dictionary), max_length, rows_of,
            normalization
        )
    elif not path.exists():
        raise AtlasError(f"cells not found: {path}")
    else:
        raise AtlasError(f"{path}: expected a tokenized dataset directory (Hugging Face datasets) or an .h5ad file")
    if not input_ids:
        raise AtlasError(f"{path} holds no cells")
    return Cells(input_ids=input_ids, digest=cells_digest(input_ids), source=str(path), rows=chosen[0])


def read_expression(path: str | Path, rows: np.ndarray) -> np.ndarray:
    """Log-normalised expression ``log1p(count / total * 10,000)`` of the given rows of an `.h5ad`, all genes (the
    matrix the reference study computes its steering pseudotime on)."""
    import anndata

    try:
        adata = anndata.read_h5ad(path, backed="r")
    except (OSError, KeyError, ValueError) as error:
        raise AtlasError(f"cannot read {path}: {error}") from None
    counts = _dense(adata.X[np.asarray(rows)])
    totals = counts.sum(axis=1, keepdims=True)
    return np.log1p(counts / np.where(totals > 0, totals, 1.0) * TARGET_SUM).astype(np.float32)


def choose_rows(total: int, sample: int | None, seed: int, n_cells: int | None) -> np.ndarray:
    """Rows of the chosen cells among ``total``: a seeded random draw of ``sample``, then the first ``n_cells``."""
    rows = np.arange(total)
    if sample is not None and total > sample:
        rows = np.sort(np.random.RandomState(seed).choice(total, sample, replace=False))
    return rows if n_cells is None else rows[:n_cells]


def _read_tokenized_dataset(
    path: Path, rows_of, max_length: int, tokens: dict | None
) -> list[np.ndarray]:
    import datasets

    try:
        dataset = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as error:
        raise AtlasError(f"{path} is not a Hugging Face datasets directory: {error}") from None
    if isinstance(dataset, datasets.DatasetDict):
        if len(dataset) != 1:
            raise AtlasError(f"{path} holds several splits ({', '.join(dataset)}): point at one split's directory")
        dataset = next(iter(dataset.values()))
    if "input_ids" not in dataset.column_names:
        raise AtlasError(f"{path} has no input_ids column (columns: {', '.join(dataset.column_names)})")
    dataset = dataset.select(rows_of(len(dataset)))
    eos_id = tokens.get(EOS_TOKEN) if tokens else None
    return [_truncate(np.asarray(ids, dtype=np.int64), max_length, eos_id) for ids in dataset["input_ids"]]


def _truncate(ids: np.ndarray, max_length: int, eos_id: int | None) -> np.ndarray:
    """Cut a sequence to max_length, keeping its closing EOS token when it has one."""
    if ids.size <= max_length:
        return ids
    if eos_id is not None and ids[-1] == eos_id:
        return np.concatenate([ids[: max_length - 1], ids[-1:]])
    return ids[:max_length]


def _gene_ids(var) -> np.ndarray:
    for column in GENE_ID_COLUMNS:
        if column in var.columns:
            return var[column].astype(str).to_numpy()
    return var.index.astype(str).to_numpy()


def _encode_h5ad(
    path: Path, tokens: dict, medians: dict, max_length: int, rows_of, normalization: str
) -> list[np.ndarray]:
    import anndata

    try:
        adata = anndata.read_h5ad(path, backed="r")
    except (OSError, KeyError, ValueError) as error:
        raise AtlasError(f"cannot read {path}: {error}") from None
    rows = rows_of(adata.n_obs)
    gene_ids = _gene_ids(adata.var)
    columns = np.array([i for i, gene in enumerate(gene_ids) if gene in tokens and gene in medians], dtype=np.int64)
    if columns.size == 0:
        raise AtlasError(
            f"none of the {len(gene_ids)} genes of {path} are in the vocabulary (matched by Ensembl id from var "
            f"column {'/'.join(GENE_ID_COLUMNS)} or var_names; e.g. {', '.join(gene_ids[:3])})"
        )
    gene_tokens = np.array([tokens[gene_ids[i]] for i in columns], dtype=np.int64)
    gene_medians = np.array([medians[gene_ids[i]] for i in columns], dtype=np.float64)
    if np.any(gene_medians <= 0):
        raise AtlasError(f"the gene-median dictionary has non-positive medians for genes of {path}")
    n_counts = adata.obs["n_counts"].to_numpy(dtype=np.float64) if "n_counts" in adata.obs.columns else None
    cls_id, eos_id = tokens.get(CLS_TOKEN), tokens.get(EOS_TOKEN)
    input_ids: list[np.ndarray] = []
    for start in range(0, len(rows), _CHUNK_CELLS):
        chunk = rows[start:start + _CHUNK_CELLS]
        counts = _dense(adata.X[chunk])
        totals = n_counts[chunk] if n_counts is not None else counts.sum(axis=1)
        input_ids.extend(rank_value_encode(counts[:, columns], totals, gene_tokens, gene_medians, max_length, cls_id,
                                           eos_id, normalization))
    return input_ids


def _dense(block) -> np.ndarray:
    return np.asarray(block.toarray() if hasattr(block, "toarray") else block, dtype=np.float64)


def rank_value_encode(
    counts: np.ndarray,
    total_counts: np.ndarray,
    gene_tokens: np.ndarray,
    gene_medians: np.ndarray,
    max_length: int,
    cls_id: int | None,
    eos_id: int | None,
    normalization: str = "geneformer",
) -> list[np.ndarray]:
    """Geneformer's encoding of a cells x genes count block: normalise (``log1p`` of it too when asked), divide by
    medians, rank expressed genes."""
    specials = (cls_id is not None) + (eos_id is not None)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = counts / np.where(total_counts > 0, total_counts, 1.0)[:, None] * TARGET_SUM
        if normalization == "log1p":
            normalised = np.log1p(normalised)
        scaled = normalised / gene_medians[None, :]
    sequences = []
    for row in scaled:
        expressed = np.flatnonzero(row > 0)
        # stable sort: ties keep the gene order of the file, so the encoding is deterministic
        ranked = expressed[np.argsort(-row[expressed], kind="stable")][: max_length - specials]
        parts = [np.array([cls_id])] if cls_id is not None else []
        parts.append(gene_tokens[ranked])
        if eos_id is not None:
            parts.append(np.array([eos_id]))
        sequences.append(np.concatenate(parts).astype(np.int64))
    return sequences


def token_gene_names(token_dictionary: Mapping, gene_name_dictionary: Mapping | None = None) -> dict[int, str]:
    """Token id -> gene name for every gene token; names from a Geneformer name -> Ensembl id dictionary if given."""
    names_by_id = {str(ensembl): str(name) for name, ensembl in (gene_name_dictionary or {}).items()}
    return {int(token): names_by_id.get(gene, gene) for gene, token in token_dictionary.items()
            if not _is_special(gene)}


def special_token_ids(token_dictionary: Mapping) -> list[int]:
    """Ids of the dictionary's special tokens (``<pad>``, ``<mask>``, ``<cls>``, ``<eos>``, ...)."""
    return sorted(int(token) for gene, token in token_dictionary.items() if _is_special(gene))


def _is_special(gene: str) -> bool:
    return gene.startswith("<") and gene.endswith(">")
