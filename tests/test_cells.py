"""Cell loading: tokenized datasets, rank-value encoding of .h5ad files, and safe dictionary reading."""

from __future__ import annotations

import json
import os
import pickle

import anndata
import datasets
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from atlas.cells import cells_digest, load_cells, load_dictionary, special_token_ids, token_gene_names
from atlas.errors import AtlasError

TOKENS = {"<pad>": 0, "<mask>": 1, "<cls>": 2, "<eos>": 3, "ENSG0A": 4, "ENSG0B": 5, "ENSG0C": 6, "ENSG0D": 7}
MEDIANS = {"ENSG0A": 1.0, "ENSG0B": 2.0, "ENSG0C": 4.0, "ENSG0D": 0.5}


def write_h5ad(tmp_path, counts, var_names, var_column=None, sparse=False):
    var = pd.DataFrame(index=var_names)
    if var_column is not None:
        var[var_column[0]] = var_column[1]
    matrix = scipy.sparse.csr_matrix(counts, dtype=np.float32) if sparse else np.asarray(counts, dtype=np.float32)
    adata = anndata.AnnData(X=matrix, var=var, obs=pd.DataFrame(index=[f"c{i}" for i in range(len(counts))]))
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def test_h5ad_is_rank_value_encoded_by_count_over_gene_median(tmp_path):
    # cell 0: A=2/1=2, B=8/2=4, C=4/4=1, D=0 -> B, A, C ; cell 1: D=1/0.5=2, A=1 -> D, A
    path = write_h5ad(tmp_path, [[2, 8, 4, 0], [1, 0, 0, 1]], ["ENSG0A", "ENSG0B", "ENSG0C", "ENSG0D"])
    cells = load_cells(path, token_dictionary=TOKENS, gene_median_dictionary=MEDIANS)
    assert [ids.tolist() for ids in cells.input_ids] == [[2, 5, 4, 6, 3], [2, 7, 4, 3]]
    assert all(ids.dtype == np.int64 for ids in cells.input_ids)
    assert cells.n_cells == 2


def test_sparse_counts_and_genes_outside_the_vocabulary_are_handled(tmp_path):
    path = write_h5ad(tmp_path, [[1, 3, 100]], ["ENSG0A", "ENSG0B", "OTHER"], sparse=True)
    cells = load_cells(path, token_dictionary=TOKENS, gene_median_dictionary=MEDIANS)
    assert cells.input_ids[0].tolist() == [2, 5, 4, 3]  # B = 3/2 beats A = 1/1; OTHER has no token


def test_truncation_keeps_cls_and_eos_and_the_top_ranked_genes(tmp_path):
    path = write_h5ad(tmp_path, [[2, 8, 4, 0]], ["ENSG0A", "ENSG0B", "ENSG0C", "ENSG0D"])
    cells = load_cells(path, token_dictionary=TOKENS, gene_median_dictionary=MEDIANS, max_length=4)
    assert cells.input_ids[0].tolist() == [2, 5, 4, 3]


def test_genes_are_matched_by_an_ensembl_id_column_when_var_names_are_symbols(tmp_path):
    path = write_h5ad(tmp_path, [[2, 8]], ["GA", "GB"], var_column=("gene_ids", ["ENSG0A", "ENSG0B"]))
    cells = load_cells(path, token_dictionary=TOKENS, gene_median_dictionary=MEDIANS)
    assert cells.input_ids[0].tolist() == [2, 5, 4, 3]


def test_no_vocabulary_gene_in_the_file_is_a_clear_error(tmp_path):
    path = write_h5ad(tmp_path, [[2, 8]], ["GA", "GB"])
    with pytest.raises(AtlasError, match="none of the 2 genes"):
        load_cells(path, token_dictionary=TOKENS, gene_median_dictionary=MEDIANS)


def test_h5ad_without_dictionaries_is_a_clear_error(tmp_path):
    path = write_h5ad(tmp_path, [[2, 8]], ["ENSG0A", "ENSG0B"])
    with pytest.raises(AtlasError, match="gene-median dictionary"):
        load_cells(path, token_dictionary=TOKENS)


def test_n_cells_takes_the_first_cells(tmp_path):
    path = write_h5ad(tmp_path, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], ["ENSG0A", "ENSG0B", "ENSG0C", "ENSG0D"])
    cells = load_cells(path, token_dictionary=TOKENS, gene_median_dictionary=MEDIANS, n_cells=2)
    assert [ids.tolist() for ids in cells.input_ids] == [[2, 4, 3], [2, 5, 3]]


def test_tokenized_dataset_is_read_as_is(tmp_path):
    rows = [[2, 5, 4, 3], [2, 7, 3]]
    datasets.Dataset.from_dict({"input_ids": rows, "length": [4, 3]}).save_to_disk(str(tmp_path / "ds"))
    cells = load_cells(tmp_path / "ds")
    assert [ids.tolist() for ids in cells.input_ids] == rows


def test_tokenized_dataset_truncation_keeps_the_eos_token(tmp_path):
    datasets.Dataset.from_dict({"input_ids": [[2, 5, 4, 6, 3]]}).save_to_disk(str(tmp_path / "ds"))
    cells = load_cells(tmp_path / "ds", token_dictionary=TOKENS, max_length=3)
    assert cells.input_ids[0].tolist() == [2, 5, 3]


def test_tokenized_dataset_without_input_ids_is_a_clear_error(tmp_path):
    datasets.Dataset.from_dict({"tokens": [[1, 2]]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(AtlasError, match="no input_ids column"):
        load_cells(tmp_path / "ds")


def test_a_directory_that_is_not_a_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(AtlasError, match="not a Hugging Face datasets directory"):
        load_cells(tmp_path)


def test_digest_is_stable_and_changes_with_any_token_or_boundary():
    base = cells_digest([np.array([2, 5, 3]), np.array([2, 4, 3])])
    assert base == cells_digest([np.array([2, 5, 3], dtype=np.int32), np.array([2, 4, 3])])
    assert base != cells_digest([np.array([2, 5, 3]), np.array([2, 6, 3])])
    assert base != cells_digest([np.array([2, 5]), np.array([3, 2, 4, 3])])
    assert base != cells_digest([np.array([2, 4, 3]), np.array([2, 5, 3])])


def test_dictionaries_are_read_from_plain_pickles_and_json(tmp_path):
    (tmp_path / "tokens.pkl").write_bytes(pickle.dumps(TOKENS))
    (tmp_path / "medians.json").write_text(json.dumps(MEDIANS))
    assert load_dictionary(tmp_path / "tokens.pkl") == TOKENS
    assert load_dictionary(tmp_path / "medians.json") == MEDIANS


def test_numpy_number_values_in_a_pickle_become_plain_numbers(tmp_path):
    (tmp_path / "medians.pkl").write_bytes(pickle.dumps({"ENSG0A": np.float32(1.5), "ENSG0B": np.int64(2)}))
    loaded = load_dictionary(tmp_path / "medians.pkl")
    assert loaded == {"ENSG0A": 1.5, "ENSG0B": 2}
    assert all(type(value) in (int, float) for value in loaded.values())


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"ENSG0A": RunsCode()}))
    with pytest.raises(AtlasError, match="refusing to load"):
        load_dictionary(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()


def test_a_pickle_of_other_objects_is_refused(tmp_path):
    (tmp_path / "frame.pkl").write_bytes(pickle.dumps(pd.Series(MEDIANS)))
    with pytest.raises(AtlasError, match="refusing to load"):
        load_dictionary(tmp_path / "frame.pkl")


def test_a_dictionary_with_non_numeric_values_is_refused(tmp_path):
    (tmp_path / "tokens.json").write_text(json.dumps({"ENSG0A": "four"}))
    with pytest.raises(AtlasError, match="not a string -> number pair"):
        load_dictionary(tmp_path / "tokens.json")


def test_gene_name_dictionaries_hold_text_values(tmp_path):
    (tmp_path / "names.pkl").write_bytes(pickle.dumps({"CD3D": "ENSG0A"}))
    assert load_dictionary(tmp_path / "names.pkl", text_values=True) == {"CD3D": "ENSG0A"}
    with pytest.raises(AtlasError, match="string -> number"):
        load_dictionary(tmp_path / "names.pkl")


def test_token_names_prefer_gene_symbols_and_skip_special_tokens():
    names = token_gene_names(TOKENS, {"CD3D": "ENSG0A"})
    assert names == {4: "CD3D", 5: "ENSG0B", 6: "ENSG0C", 7: "ENSG0D"}
    assert special_token_ids(TOKENS) == [0, 1, 2, 3]


def test_log1p_normalization_ranks_by_log_expression_over_gene_median(tmp_path):
    # the study's code: log1p(count / total * 1e4) / median; A = log1p(9000) / 1 < D = log1p(1000) / 0.5
    path = write_h5ad(tmp_path, [[9, 0, 0, 1]], ["ENSG0A", "ENSG0B", "ENSG0C", "ENSG0D"])
    assert np.log1p(9000) / 1.0 < np.log1p(1000) / 0.5 and 9000 / 1.0 > 1000 / 0.5
    geneformer = load_cells(path, token_dictionary=TOKENS, gene_median_dictionary=MEDIANS)
    study = load_cells(path, token_dictionary=TOKENS, gene_median_dictionary=MEDIANS, normalization="log1p")
    assert geneformer.input_ids[0].tolist() == [2, 4, 7, 3]
    assert study.input_ids[0].tolist() == [2, 7, 4, 3]


def test_a_seeded_sample_of_a_sparse_h5ad_encodes_the_drawn_rows(tmp_path):
    counts = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0]]
    path = write_h5ad(tmp_path, counts, ["ENSG0A", "ENSG0B", "ENSG0C", "ENSG0D"], sparse=True)
    cells = load_cells(path, token_dictionary=TOKENS, gene_median_dictionary=MEDIANS, sample=3, seed=1)
    rows = np.sort(np.random.RandomState(1).choice(5, 3, replace=False))
    assert cells.rows.tolist() == rows.tolist()
    every = load_cells(path, token_dictionary=TOKENS, gene_median_dictionary=MEDIANS)
    assert [ids.tolist() for ids in cells.input_ids] == [every.input_ids[row].tolist() for row in rows]
