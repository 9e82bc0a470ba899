"""The bad-input corpus: every case is one clear line on stderr, a non-zero exit and an unchanged database.

Each case runs the real console entry point (`atlas.cli.main`, the function behind the `atlas` script) in this
process, against a graph that already holds a run, and compares a content checksum of the graph before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from atlas.cli import main
from atlas.runformat import MANIFEST, file_sha256, read_manifest, write_manifest, write_shard
from atlas.sae.biosae import write_sae
from atlas.sae.topk import TopKSAE
from loaders.schema import gene_id
from tests.reliability.checksum import graph_checksum
from tests.reliability.processes import error_lines

pytestmark = pytest.mark.neo4j
MARKER = Path(f"/tmp/atlas-reliability-pwned-{os.getpid()}")


class Payload:
    """Unpickling this runs a shell command that creates MARKER: the proof that code did (not) execute."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


@dataclass
class Case:
    """How to build one bad input in a scratch directory; returns the `atlas` arguments that must fail."""

    build: Callable[[Path, Path, Path], list[str]]  # (scratch, good run dir, tiny trace inputs) -> argv
    expect: str  # a fragment of the one error line


def _run_copy(scratch: Path, run: Path) -> Path:
    return Path(shutil.copytree(run, scratch / "run"))


def _rewrite_shard(run: Path, change: Callable[[pa.Table], pa.Table], index: int = 0) -> None:
    """Replace one shard with ``change(table)``, written raw (any schema) and recorded with a fresh checksum (the
    manifest's edge count follows, so only the shard's content is wrong)."""
    manifest = read_manifest(run)
    record = manifest.shards[index]
    table = change(pq.read_table(run / record.file))
    pq.write_table(table, run / record.file)
    manifest.counts["edges"] += table.num_rows - record.rows
    record.sha256, record.rows = file_sha256(run / record.file), table.num_rows
    write_manifest(run, manifest)


def _set_value(column: str, value, row: int = 0) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        values = table.column(column).to_pylist()
        values[row] = value
        return table.set_column(table.column_names.index(column), column,
                                pa.array(values, table.schema.field(column).type))
    return change


def _ingest_case(change: Callable[[Path], None]) -> Callable[[Path, Path, Path], list[str]]:
    def build(scratch: Path, run: Path, _: Path) -> list[str]:
        copy = _run_copy(scratch, run)
        change(copy)
        return ["ingest", str(copy), "--quiet"]
    return build


def _shard_case(change: Callable[[pa.Table], pa.Table], index: int = 0):
    return _ingest_case(lambda run: _rewrite_shard(run, change, index))


def _first_shard(run: Path) -> Path:
    return run / read_manifest(run).shards[0].file


def _truncate(run: Path, keep_checksum: bool) -> None:
    path = _first_shard(run)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    if keep_checksum:
        return
    manifest = read_manifest(run)
    manifest.shards[0].sha256 = file_sha256(path)
    write_manifest(run, manifest)


def _empty_shard(run: Path) -> None:
    path = _first_shard(run)
    path.write_bytes(b"")
    manifest = read_manifest(run)
    manifest.shards[0].sha256 = file_sha256(path)
    write_manifest(run, manifest)


def _edit_manifest(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        data = json.loads((run / MANIFEST).read_text())
        edit(data)
        (run / MANIFEST).write_text(json.dumps(data))
    return change


def _duplicate_across_shards(run: Path) -> None:
    manifest = read_manifest(run)
    first = pq.read_table(run / manifest.shards[0].file)
    second = pq.read_table(run / manifest.shards[1].file)
    record = write_shard(run, manifest.shards[1].file, pa.concat_tables([second, first.slice(0, 1)]))
    manifest.shards[1].sha256, manifest.shards[1].rows = record.sha256, record.rows
    manifest.counts["edges"] += 1
    write_manifest(run, manifest)


def _gmt_case(content: bytes) -> Callable[[Path, Path, Path], list[str]]:
    def build(scratch: Path, _: Path, __: Path) -> list[str]:
        path = scratch / "sets.gmt"
        path.write_bytes(content)
        return ["annotate", "--gmt", str(path), "--quiet"]
    return build


def _plan(scratch: Path, inputs: Path, *extra: str, model: Path | None = None, saes: Path | None = None,
          cells: Path | None = None) -> list[str]:
    return ["trace", "plan", "--model", str(model or inputs / "model"), "--saes", str(saes or inputs / "saes"),
            "--cells", str(cells or inputs / "cells"), "--source-layer", "1", "--out", str(scratch / "out"), *extra]


def _sae_copy(scratch: Path, inputs: Path) -> tuple[Path, Path]:
    saes = Path(shutil.copytree(inputs / "saes", scratch / "saes"))
    return saes, next(saes.glob("layer01_*"))


def _sae_shape_mismatch(scratch: Path, _: Path, inputs: Path) -> list[str]:
    saes, layer_dir = _sae_copy(scratch, inputs)
    checkpoint = torch.load(layer_dir / "sae_final.pt", weights_only=True)
    state = checkpoint["model_state_dict"]
    state["W_enc.weight"] = state["W_enc.weight"][:, :-1].clone()
    torch.save(checkpoint, layer_dir / "sae_final.pt")
    return _plan(scratch, inputs, saes=saes)


def _sae_width_mismatch(scratch: Path, _: Path, inputs: Path) -> list[str]:
    saes, layer_dir = _sae_copy(scratch, inputs)
    k = int(torch.load(layer_dir / "sae_final.pt", weights_only=True)["k"])
    shutil.rmtree(layer_dir)
    write_sae(saes, 1, TopKSAE(16, 4 * 16, k, torch.zeros(16)))  # the model is 32 wide
    return _plan(scratch, inputs, saes=saes)


def _checkpoint_with_code(scratch: Path, _: Path, inputs: Path) -> list[str]:
    saes, layer_dir = _sae_copy(scratch, inputs)
    checkpoint = torch.load(layer_dir / "sae_final.pt", weights_only=True)
    checkpoint["extra"] = Payload()
    torch.save(checkpoint, layer_dir / "sae_final.pt")
    return _plan(scratch, inputs, saes=saes)


def _dictionaries(scratch: Path, token_file: str = "tokens.json") -> tuple[Path, Path]:
    genes = {f"ENSG{index:011d}": index + 4 for index in range(60)}
    tokens, medians = scratch / token_file, scratch / "medians.json"
    if token_file.endswith(".json"):
        tokens.write_text(json.dumps({"<pad>": 0, "<mask>": 1, "<cls>": 2, "<eos>": 3, **genes}))
    medians.write_text(json.dumps({gene: 1.0 for gene in genes}))
    return tokens, medians


def _h5ad_without_vocabulary(scratch: Path, _: Path, inputs: Path) -> list[str]:
    import anndata

    tokens, medians = _dictionaries(scratch)
    counts = np.random.default_rng(0).poisson(2.0, (4, 10)).astype(np.float32)
    adata = anndata.AnnData(counts)
    adata.var_names = [f"NOT_A_GENE_{index}" for index in range(10)]
    adata.write_h5ad(scratch / "cells.h5ad")
    return _plan(scratch, inputs, "--token-dictionary", str(tokens), "--gene-median-dictionary", str(medians),
                 cells=scratch / "cells.h5ad")


def _dataset_without_input_ids(scratch: Path, _: Path, inputs: Path) -> list[str]:
    import datasets

    datasets.Dataset.from_dict({"tokens": [[2, 5, 6, 3]], "length": [4]}).save_to_disk(str(scratch / "cells"))
    return _plan(scratch, inputs, cells=scratch / "cells")


def _pickle_that_runs_code(scratch: Path, run: Path, inputs: Path) -> list[str]:
    import pickle

    args = _h5ad_without_vocabulary(scratch, run, inputs)
    tokens = scratch / "tokens.pkl"
    tokens.write_bytes(pickle.dumps({"<cls>": 2, "gene": Payload()}))
    args[args.index("--token-dictionary") + 1] = str(tokens)
    return args


def _manifest_field(name: str, value) -> Callable[[Path], None]:
    return _edit_manifest(lambda data: data.update({name: value}))


def _shard_field(name: str, value) -> Callable[[Path], None]:
    return _edit_manifest(lambda data: data["shards"][0].update({name: value}))


def _shard_outside(run: Path) -> None:
    """The first shard moved out of the run directory and listed by a path that climbs out of it."""
    shard = _first_shard(run)
    shard.rename(run.parent / shard.name)
    _shard_field("file", f"../{shard.name}")(run)


def _symlinked_shard(run: Path) -> None:
    """The first shard replaced by a symbolic link to an identical file outside the run directory."""
    shard = _first_shard(run)
    outside = run.parent / f"outside-{shard.name}"
    shard.rename(outside)
    shard.symlink_to(outside)


def _symlinked_manifest(run: Path) -> None:
    outside = run.parent / "outside-manifest.json"
    (run / MANIFEST).rename(outside)
    (run / MANIFEST).symlink_to(outside)


def _without_widths(change: Callable[[pa.Table], pa.Table]) -> Callable[[Path], None]:
    """A manifest written before SAE widths were recorded, and a shard changed by ``change``."""
    def damage(run: Path) -> None:
        _manifest_field("sae_features", {})(run)
        _rewrite_shard(run, change)
    return damage


def _catalog_case(edit: Callable[[dict], None]) -> Callable[[Path, Path, Path], list[str]]:
    """An SAE atlas whose layer-1 feature catalog is changed by ``edit``, loaded with `atlas annotate`."""
    def build(scratch: Path, _: Path, inputs: Path) -> list[str]:
        saes, layer_dir = _sae_copy(scratch, inputs)
        catalog = json.loads((layer_dir / "feature_catalog.json").read_text())
        edit(catalog)
        (layer_dir / "feature_catalog.json").write_text(json.dumps(catalog))
        return ["annotate", "--sae-atlas", str(saes), "--model", "tiny", "--quiet"]
    return build


CATALOG_CASES: dict[str, Case] = {
    "catalog summary as a list": Case(_catalog_case(lambda data: data.update(summary=[1])),
                                      "summary must be a JSON object"),
    "catalog n_features as text": Case(_catalog_case(lambda data: data["summary"].update(n_features="many")),
                                       "summary.n_features must be a non-negative integer"),
    "catalog gene_id as text": Case(_catalog_case(
        lambda data: next(entry for entry in data["features"] if entry["top_genes"])["top_genes"][0].update(
            gene_id="TP53")), "gene_id must be a non-negative"),
    "catalog fire_count as a list": Case(_catalog_case(lambda data: data["features"][0].update(fire_count=[3])),
                                         "features[0].fire_count must be a non-negative integer"),
    "catalog top_genes as an object": Case(_catalog_case(lambda data: data["features"][1].update(top_genes={})),
                                           "features[1].top_genes must be a list"),
    "catalog is_dead as text": Case(_catalog_case(lambda data: data["features"][0].update(is_dead="no")),
                                    "features[0].is_dead must be true or false"),
}


# Damaged run directories: each must be refused in one line naming the file (and row and column, or field), with
# the database unchanged. Grouped by class for the measurement in the note.
DAMAGED_RUNS: dict[str, Case] = {
    "null n": Case(_shard_case(_set_value("n", None)), "row 0, column n: null"),
    "null source_feature": Case(_shard_case(_set_value("source_feature", None, row=2)),
                                "row 2, column source_feature: null"),
    "null target_feature": Case(_shard_case(_set_value("target_feature", None)), "column target_feature: null"),
    "null target_layer": Case(_shard_case(_set_value("target_layer", None)), "column target_layer: null"),
    "null d": Case(_shard_case(_set_value("d", None, row=5)), "row 5, column d: null"),
    "null q": Case(_shard_case(_set_value("q", None)), "column q: null"),
    "null run_id": Case(_shard_case(_set_value("run_id", None)), "column run_id: null"),
    "run_id of another run": Case(_shard_case(_set_value("run_id", "other")), "must equal the manifest run_id"),
    "n above the run's cells": Case(_shard_case(_set_value("n", 21)), "column n: 21 must be at most the run's 20"),
    "n zero": Case(_shard_case(_set_value("n", 0)), "column n: 0 must be >= 1"),
    "source feature beyond the SAE": Case(_shard_case(_set_value("source_feature", 4608)),
                                          "source_feature: 4608 must be below the source layer's SAE width 4608"),
    "target feature beyond the SAE": Case(_shard_case(_set_value("target_feature", 5000, row=1)),
                                          "row 1, column target_feature: 5000 must be below its layer's SAE width"),
    "target feature that would alias another edge": Case(
        _ingest_case(_without_widths(_set_value("target_feature", (1 << 24) + 3))),
        "target_feature: 16777219 must be below its layer's SAE width"),
    "p above 1": Case(_shard_case(_set_value("p", 1.5)), "column p: 1.5 must be in [0, 1]"),
    "negative q": Case(_shard_case(_set_value("q", -0.25)), "column q: -0.25 must be in [0, 1]"),
    "negative std": Case(_shard_case(_set_value("std", -1.0)), "column std: -1.0 must be >= 0"),
    "negative consistency": Case(_shard_case(_set_value("consistency", -0.5)), "must be in [0, 1]"),
    "NaN p": Case(_shard_case(_set_value("p", float("nan"))), "column p: nan must be a finite number"),
    "null model in the manifest": Case(_ingest_case(_manifest_field("model", None)),
                                       "field 'model' must be a string, got null"),
    "numeric SAE name": Case(_ingest_case(_manifest_field("sae", 5)), "field 'sae' must be a string, got an integer"),
    "empty model name": Case(_ingest_case(_manifest_field("model", " ")), "model must be a non-empty string"),
    "n_cells as text": Case(_ingest_case(_manifest_field("n_cells", "20")), "field 'n_cells' must be an integer"),
    "n_cells true": Case(_ingest_case(_manifest_field("n_cells", True)), "field 'n_cells' must be an integer, got "
                                                                         "true/false"),
    "source_layer as a number with a fraction": Case(_ingest_case(_manifest_field("source_layer", 5.5)),
                                                     "field 'source_layer' must be an integer, got a number"),
    "downstream_layers as text": Case(_ingest_case(_manifest_field("downstream_layers", "6,11,17")),
                                      "field 'downstream_layers' must be a list"),
    "downstream layer listed twice": Case(_ingest_case(_manifest_field("downstream_layers", [6, 6, 11, 17])),
                                          "lists a layer twice"),
    "downstream layer beyond the model": Case(_ingest_case(_manifest_field("downstream_layers", [6, 11, 18])),
                                              "downstream layer 18 is beyond the model's layers 0..17"),
    "model_layers zero": Case(_ingest_case(_manifest_field("model_layers", 0)), "model_layers must be in 1..256"),
    "SAE width as text": Case(_ingest_case(_manifest_field("sae_features", {"6": "4608"})),
                              "sae_features['6'] must map a layer number"),
    "thresholds as a list": Case(_ingest_case(_manifest_field("thresholds", [0.5, 0.7])),
                                 "field 'thresholds' must be an object"),
    "counts as text": Case(_ingest_case(_manifest_field("counts", "1394")), "field 'counts' must be an object"),
    "shards as an object": Case(_ingest_case(_manifest_field("shards", {"file": "x"})),
                                "field 'shards' must be a list"),
    "shard entry as text": Case(_ingest_case(_edit_manifest(lambda data: data["shards"].__setitem__(0, "x"))),
                                "shards[0] must be a JSON object, got a string"),
    "shard rows as text": Case(_ingest_case(_shard_field("rows", "12")), "shards[0]: field 'rows' must be an integer"),
    "shard checksum null": Case(_ingest_case(_shard_field("sha256", None)), "field 'sha256' must be a string, got "
                                                                            "null"),
    "shard checksum not hex": Case(_ingest_case(_shard_field("sha256", "z" * 64)), "sha256 must be 64 lower-case hex"),
    "unknown manifest field": Case(_ingest_case(_manifest_field("owner", "me")), "unknown field 'owner'"),
    "missing run_id": Case(_ingest_case(_edit_manifest(lambda data: data.pop("run_id"))), "missing field 'run_id'"),
    "format_version as text": Case(_ingest_case(_manifest_field("format_version", "1")),
                                   "field 'format_version' must be an integer"),
    "run id too long to index": Case(_ingest_case(_manifest_field("run_id", "r" * 5000)),
                                     "run_id is 5000 characters long, more than 200"),
    "run id with a line break": Case(_ingest_case(_manifest_field("run_id", "a\nb")), "contains a control character"),
    "shard path leaving the run directory": Case(_ingest_case(_shard_outside),
                                                 "must be a plain file name inside the run directory"),
    "absolute shard path": Case(_ingest_case(_shard_field("file", "/etc/hostname")),
                                "must be a plain file name inside the run directory"),
    "hidden shard file": Case(_ingest_case(_shard_field("file", ".edges.parquet")), "must be a plain file name"),
    "empty shard file name": Case(_ingest_case(_shard_field("file", "")), "must be a plain file name"),
    "shard that is a directory": Case(_ingest_case(lambda run: (run / "edges-dir.parquet").mkdir() or _shard_field(
        "file", "edges-dir.parquet")(run)), "edges-dir.parquet: cannot be read"),
    "symbolic link as a shard": Case(_ingest_case(_symlinked_shard), "is a symbolic link"),
    "symbolic link as the manifest": Case(_ingest_case(_symlinked_manifest), "is a symbolic link"),
    "manifest edge count off by one": Case(_ingest_case(_edit_manifest(
        lambda data: data["counts"].update(edges=data["counts"]["edges"] - 1))), "but the shards list"),
    "manifest edges per layer wrong": Case(_ingest_case(_edit_manifest(
        lambda data: data["counts"]["edges_per_layer"].update({"6": data["counts"]["edges_per_layer"]["6"] + 1}))),
        "counts.edges_per_layer is"),
}


CASES: dict[str, Case] = {
    "empty Parquet shard": Case(_ingest_case(_empty_shard), "not a readable Parquet"),
    "truncated Parquet shard": Case(_ingest_case(lambda run: _truncate(run, keep_checksum=False)),
                                    "not a readable Parquet"),
    "truncated shard, manifest checksum kept": Case(_ingest_case(lambda run: _truncate(run, keep_checksum=True)),
                                                    "checksum does not match"),
    "manifest checksum mismatch": Case(_ingest_case(_edit_manifest(
        lambda data: data["shards"][0].update(sha256="0" * 64))), "checksum does not match"),
    "missing column p": Case(_shard_case(lambda table: table.drop_columns(["p"])), "missing column(s) p"),
    "mistyped column (float source_feature)": Case(_shard_case(lambda table: table.set_column(
        2, "source_feature", pc.cast(table.column("source_feature"), pa.float64()))), "column source_feature has type"),
    "mistyped column (text d)": Case(_shard_case(lambda table: table.set_column(
        5, "d", pc.cast(table.column("d"), pa.string()))), "column d has type"),
    "NaN Cohen's d": Case(_shard_case(_set_value("d", float("nan"))), "row 0, column d: nan must be a finite number"),
    "inf std": Case(_shard_case(_set_value("std", float("inf"), row=3)), "column std: inf must be a finite"),
    "-inf mean": Case(_shard_case(_set_value("mean", float("-inf"), row=1)), "column mean: -inf"),
    "negative source feature": Case(_shard_case(_set_value("source_feature", -4)), "source_feature: -4 must be >= 0"),
    "negative target feature": Case(_shard_case(_set_value("target_feature", -1)), "target_feature: -1 must be"),
    "negative target layer": Case(_shard_case(_set_value("target_layer", -1)), "target_layer: -1 must be one of"),
    "out-of-range target layer": Case(_shard_case(_set_value("target_layer", 99)), "target_layer: 99 must be one of"),
    "source layer other than the manifest's": Case(_shard_case(_set_value("source_layer", 7)),
                                                   "must equal the manifest source_layer"),
    "consistency above 1": Case(_shard_case(_set_value("consistency", 1.5)), "must be in [0, 1]"),
    "duplicate edge in a shard": Case(_shard_case(lambda table: pa.concat_tables([table, table.slice(2, 1)])),
                                      "duplicate edge"),
    "duplicate edge across shards": Case(_ingest_case(_duplicate_across_shards), "is in two shards"),
    "incomplete shard (fewer rows than the manifest)": Case(_ingest_case(_edit_manifest(
        lambda data: (data["shards"][0].update(rows=data["shards"][0]["rows"] + 5),
                      data["counts"].update(edges=data["counts"]["edges"] + 5)))), "rows but the manifest says"),
    "shard listed but missing": Case(_ingest_case(lambda run: _first_shard(run).unlink()),
                                     "listed in the manifest but"),
    "negative source layer in the manifest": Case(_ingest_case(_edit_manifest(
        lambda data: data.update(source_layer=-1))), "source_layer must be a non-negative integer"),
    "malformed manifest JSON": Case(_ingest_case(lambda run: (run / MANIFEST).write_text("{\"run_id\": ")),
                                    "malformed JSON"),
    "unknown run (delete)": Case(lambda *_: ["ingest", "--delete", "no-such-run"], "no run 'no-such-run'"),
    "GMT line without genes": Case(_gmt_case(b"SET_A\tdescription\n"), ":1: expected NAME<TAB>DESCRIPTION"),
    "GMT line with an empty name": Case(_gmt_case(b"SET_A\td\tTP53\n\td\tBRCA1\n"), ":2: the gene set name"),
    "GMT set defined twice": Case(_gmt_case(b"SET_A\td\tTP53\nSET_A\td\tBRCA1\n"), "already defined on line 1"),
    "GMT non-UTF-8 name": Case(_gmt_case(b"SET_A\td\tTP53\nSET_\xff\xfe\td\tBRCA1\n"), ":2: not UTF-8"),
    "GMT empty file": Case(_gmt_case(b""), "no gene sets"),
    "very long term name": Case(_gmt_case(b"SET_" + b"X" * 40_000 + b"\td\tTP53\n"), "too long"),
    "very long gene name": Case(_gmt_case(b"SET_A\td\t" + b"G" * 40_000 + b"\n"), "too long"),
    "SAE shape mismatch": Case(_sae_shape_mismatch, "W_enc.weight has shape"),
    "model/SAE width mismatch": Case(_sae_width_mismatch, "the model's residual stream is 32 wide"),
    "SAE checkpoint that would execute code": Case(_checkpoint_with_code, "not a loadable weights-only"),
    ".h5ad without the vocabulary's genes": Case(_h5ad_without_vocabulary, "are in the vocabulary"),
    "tokenized dataset without input_ids": Case(_dataset_without_input_ids, "has no input_ids column"),
    "token dictionary pickle that would execute code": Case(_pickle_that_runs_code, "refusing to load"),
    **DAMAGED_RUNS,
    **CATALOG_CASES,
}


def run_main(args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    """Run the `atlas` console entry point with ``args``; return its exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["atlas", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_non_zero_exit_and_no_change(name, loaded_graph, small_run, tiny_trace_inputs,
                                                           tmp_path, capsys, monkeypatch):
    graph, before = loaded_graph
    case = CASES[name]
    MARKER.unlink(missing_ok=True)
    code, stderr = run_main(case.build(tmp_path, small_run, tiny_trace_inputs), capsys, monkeypatch)
    lines = error_lines(stderr)
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert case.expect in lines[0]
    assert not MARKER.exists(), "the payload ran"
    assert graph_checksum(graph) == before


def test_cypher_looking_names_are_stored_verbatim_and_never_run(loaded_graph, tmp_path, capsys, monkeypatch):
    graph, before = loaded_graph
    term = "X'}) MATCH (n) DETACH DELETE n //"
    gene = '"}) WITH 1 AS x MATCH (f:Feature) SET f.pwned = true RETURN x //'
    (tmp_path / "evil.gmt").write_text(f"{term}\t$desc {{}} ;\t{gene}\tTP53\n", encoding="utf-8")
    code, stderr = run_main(["annotate", "--gmt", str(tmp_path / "evil.gmt"), "--quiet", "--json"], capsys,
                            monkeypatch)
    assert code == 0, stderr
    stored = graph.read("MATCH (g:Gene)-[:MEMBER_OF]->(t:Term) RETURN g.id AS gene, g.symbol AS symbol, "
                        "t.id AS term, t.name AS name ORDER BY gene")
    assert {row["symbol"] for row in stored} == {gene, "TP53"}
    assert {row["gene"] for row in stored} == {gene_id(gene), "TP53"}  # ids are upper-cased symbols
    assert {row["name"] for row in stored} == {term}
    after = graph_checksum(graph)
    assert after.relationships["AFFECTS"] == before.relationships["AFFECTS"]
    assert after.nodes["Feature"] == before.nodes["Feature"]
    assert graph.read("MATCH (f:Feature) WHERE f.pwned IS NOT NULL RETURN count(f) AS n")[0]["n"] == 0
    graph.write("MATCH (n) WHERE n:Gene OR n:Term DETACH DELETE n")
    assert graph_checksum(graph) == before
