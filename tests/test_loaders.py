"""The online edge loader against the real Neo4j: round trips, exactly-once shards, recovery, refusals, deletion."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import queries
from atlas.errors import AtlasError
from atlas.runformat import CALIBRATION_COLUMNS, read_manifest, write_manifest, write_shard
from benchmarks.synthetic import make_synthetic_run
from loaders.digest import graph_digest
from loaders.online import delete_run, edge_batch, feature_ids, ingest_run, run_state, shard_marks
from loaders.runs import edge_columns, validate_run
from loaders.schema import AFFECTS, feature_uid, shard_key
from tests.cli import run_atlas

pytestmark = pytest.mark.neo4j
SCALE = 0.002  # 8 source features, about 2,800 edges


@pytest.fixture(scope="module")
def run_template(tmp_path_factory) -> Path:
    return make_synthetic_run(tmp_path_factory.mktemp("run") / "L05", scale=SCALE, seed=1, features_per_shard=1024)


@pytest.fixture
def run_dir(run_template, tmp_path) -> Path:
    """A private copy of the small run that a test may damage."""
    copy = tmp_path / run_template.name
    copy.mkdir()
    for path in run_template.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    return copy


def shard_edges(run_dir: Path) -> dict[tuple[str, str], dict]:
    """(source uid, target uid) -> AFFECTS properties, computed from the shards alone."""
    manifest = read_manifest(run_dir)
    edges = {}
    for record in manifest.shards:
        for row in pq.read_table(run_dir / record.file).to_pylist():
            source = feature_uid(manifest.model, manifest.sae, row["source_layer"], row["source_feature"])
            target = feature_uid(manifest.model, manifest.sae, row["target_layer"], row["target_feature"])
            properties = {name: row[name] for name in ("d", "mean", "std", "consistency", "n", "p", "q") if name in row}
            edges[source, target] = {**properties, "run": row["run_id"], "shard": shard_key(row["run_id"], record.file),
                                     "sign": "excitatory" if row["mean"] > 0 else "inhibitory"}
    return edges


def graph_edges(graph, run_id: str) -> list[tuple[tuple[str, str], dict]]:
    rows = graph.read("MATCH (s:Feature)-[e:AFFECTS {run: $run}]->(t:Feature) "
                      "RETURN s.uid AS source, t.uid AS target, properties(e) AS properties", run=run_id)
    return [((row["source"], row["target"]), row["properties"]) for row in rows]


def visible_edges(graph, run_id: str) -> int:
    """Edges of a run that the library queries count (the shard visibility fence applied)."""
    named = queries.get("attenuation_counts")
    return sum(row["edges"] for row in graph.read(named.text, runs=[run_id], layers=None, max_q=None, q_column="q"))


def rewrite_shard(run_dir: Path, position: int, change) -> None:
    """Replace shard ``position`` by ``change(table)`` and record its new checksum (and edge count) in the manifest."""
    manifest = read_manifest(run_dir)
    record = manifest.shards[position]
    table = change(pq.read_table(run_dir / record.file))
    manifest.counts["edges"] += table.num_rows - record.rows
    manifest.shards[position] = replace(write_shard(run_dir, record.file, table),
                                        source_features=record.source_features, cells=record.cells)
    write_manifest(run_dir, manifest)


def with_value(table: pa.Table, column: str, row: int, value) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = value
    index = table.column_names.index(column)
    return table.set_column(index, column, pa.array(values, table.schema.field(column).type))


def test_every_edge_property_reads_back_as_written(clean_graph, run_dir):
    report = ingest_run(clean_graph, run_dir)
    expected = shard_edges(run_dir)
    loaded = graph_edges(clean_graph, report.run_id)
    assert report.edges_written == len(expected) == len(loaded)
    assert dict(loaded) == expected
    assert set(loaded[0][1]) == set(AFFECTS.properties) - set(CALIBRATION_COLUMNS)  # an uncalibrated run


def test_run_and_feature_nodes_carry_the_manifest(clean_graph, run_dir):
    manifest = read_manifest(run_dir)
    ingest_run(clean_graph, run_dir)
    run = run_state(clean_graph, manifest.run_id)
    assert run["status"] == "loaded"
    assert (run["model"], run["sae"], run["source_layer"]) == (manifest.model, manifest.sae, manifest.source_layer)
    assert run["downstream_layers"] == manifest.downstream_layers
    assert json.loads(run["thresholds"]) == manifest.thresholds
    assert run["shards"] == [record.file for record in manifest.shards]
    assert run["shard_checksums"] == [record.sha256 for record in manifest.shards]
    assert run["edge_count"] == sum(record.rows for record in manifest.shards)
    assert run["visible"] == [shard_key(manifest.run_id, record.file) for record in manifest.shards]
    features = clean_graph.read("MATCH (f:Feature) RETURN f.uid AS uid, f.layer AS layer, f.index AS index, "
                                "f.model AS model, f.sae AS sae")
    assert all(row["uid"] == feature_uid(row["model"], row["sae"], row["layer"], row["index"]) for row in features)
    assert {row["uid"] for row in features} == {uid for edge in shard_edges(run_dir) for uid in edge}


def test_rerun_after_success_changes_nothing(clean_graph, run_dir):
    ingest_run(clean_graph, run_dir)
    before = graph_digest(clean_graph)
    again = ingest_run(clean_graph, run_dir)
    assert again.edges_written == 0 and again.shards_loaded == []
    assert len(again.shards_already_loaded) == len(read_manifest(run_dir).shards)
    assert graph_digest(clean_graph) == before


class Interrupt(Exception):
    """Stands for a crash or Ctrl-C between two committed batches."""


def load_stopped_in_second_shard(graph, run_dir) -> int:
    """Load ``run_dir`` one shard at a time in batches of 100 and stop after a batch of its second shard; return
    the first shard's rows (all committed)."""
    first_shard_rows = read_manifest(run_dir).shards[0].rows

    def stop_in_second_shard(written: int, total: int) -> None:
        if written > first_shard_rows:
            raise Interrupt

    with pytest.raises(Interrupt):
        ingest_run(graph, run_dir, batch_size=100, streams=1, progress=stop_in_second_shard)
    return first_shard_rows


def test_a_shard_interrupted_half_way_is_cleaned_and_reloaded(clean_graph, run_dir):
    first_shard_rows = load_stopped_in_second_shard(clean_graph, run_dir)
    manifest = read_manifest(run_dir)
    state = run_state(clean_graph, manifest.run_id)
    partial = len(graph_edges(clean_graph, manifest.run_id))
    assert shard_marks(clean_graph, manifest.run_id) == {manifest.shards[1].file: partial - first_shard_rows}
    assert state["shards"] == [manifest.shards[0].file]
    assert first_shard_rows < partial < first_shard_rows + manifest.shards[1].rows
    assert visible_edges(clean_graph, manifest.run_id) == first_shard_rows  # readers never see the half shard

    report = ingest_run(clean_graph, run_dir, batch_size=100)
    assert report.recovered_shards == [manifest.shards[1].file]
    assert report.edges_removed_in_recovery == partial - first_shard_rows
    assert report.shards_already_loaded == [manifest.shards[0].file]
    loaded = graph_edges(clean_graph, manifest.run_id)
    assert len(loaded) == len(dict(loaded)) == len(shard_edges(run_dir))  # no duplicate, nothing missing
    assert dict(loaded) == shard_edges(run_dir)
    assert shard_marks(clean_graph, manifest.run_id) == {}


def test_two_shards_interrupted_together_are_both_cleaned_and_reloaded(clean_graph, run_dir):
    manifest = read_manifest(run_dir)
    rows = {record.file: record.rows for record in manifest.shards}

    def stop_with_two_shards_half_written(written: int, total: int) -> None:
        # Both at least two batches from their end: the other stream's batch in flight cannot finish its shard.
        marks = shard_marks(clean_graph, manifest.run_id)
        if len(marks) == 2 and all(0 < offset <= rows[shard] - 200 for shard, offset in marks.items()):
            raise Interrupt

    with pytest.raises(Interrupt):
        ingest_run(clean_graph, run_dir, batch_size=100, streams=2, progress=stop_with_two_shards_half_written)
    marks = shard_marks(clean_graph, manifest.run_id)
    loaded = run_state(clean_graph, manifest.run_id)["shards"]
    assert len(marks) == 2 and not set(marks) & set(loaded)
    assert loaded == [record.file for record in manifest.shards if record.file in loaded]  # manifest order

    report = ingest_run(clean_graph, run_dir, batch_size=100, streams=2)
    assert sorted(report.recovered_shards) == sorted(marks)
    assert report.edges_removed_in_recovery == sum(marks.values())
    assert dict(graph_edges(clean_graph, manifest.run_id)) == shard_edges(run_dir)
    assert len(graph_edges(clean_graph, manifest.run_id)) == len(shard_edges(run_dir))
    state = run_state(clean_graph, manifest.run_id)
    assert state["shards"] == [record.file for record in manifest.shards]
    assert state["shard_checksums"] == [record.sha256 for record in manifest.shards]
    assert shard_marks(clean_graph, manifest.run_id) == {}


def test_a_load_stopped_before_publishing_a_shard_publishes_it_on_rerun(clean_graph, run_dir):
    manifest = read_manifest(run_dir)
    first = manifest.shards[0]

    def stop_after_first_shard(written: int, total: int) -> None:
        if written == first.rows:
            raise Interrupt  # the shard's last batch committed; its publication did not happen yet

    with pytest.raises(Interrupt):
        ingest_run(clean_graph, run_dir, batch_size=first.rows, streams=1, progress=stop_after_first_shard)
    state = run_state(clean_graph, manifest.run_id)
    assert state["shards"] == [first.file] and state["visible"] == []
    assert len(graph_edges(clean_graph, manifest.run_id)) == first.rows
    assert visible_edges(clean_graph, manifest.run_id) == 0
    ingest_run(clean_graph, run_dir)
    reference = graph_digest(clean_graph)
    delete_run(clean_graph, manifest.run_id)
    ingest_run(clean_graph, run_dir)
    assert graph_digest(clean_graph) == reference
    assert visible_edges(clean_graph, manifest.run_id) == sum(record.rows for record in manifest.shards)


def test_a_run_whose_deletion_stopped_must_be_deleted_before_it_loads_again(clean_graph, run_dir):
    report = ingest_run(clean_graph, run_dir)
    reference = graph_digest(clean_graph)
    clean_graph.write(queries.internal("delete_run_hide").text, run=report.run_id)  # a delete's first step
    assert visible_edges(clean_graph, report.run_id) == 0
    with pytest.raises(AtlasError, match=r"is being deleted .* finish it with `atlas ingest --delete"):
        ingest_run(clean_graph, run_dir)
    delete_run(clean_graph, report.run_id)
    assert graph_edges(clean_graph, report.run_id) == [] and run_state(clean_graph, report.run_id) is None
    ingest_run(clean_graph, run_dir)
    assert graph_digest(clean_graph) == reference


def test_a_batch_replayed_after_its_commit_writes_nothing(clean_graph, run_dir):
    # The driver retries a transaction whose commit answer was lost; the replay must not duplicate edges.
    def stop_after_two_batches(written: int, total: int) -> None:
        if written >= 200:
            raise Interrupt

    with pytest.raises(Interrupt):
        ingest_run(clean_graph, run_dir, batch_size=100, streams=1, progress=stop_after_two_batches)
    run = validate_run(run_dir)
    record = run.shards[0]
    assert record.rows > 200
    assert len(graph_edges(clean_graph, run.run_id)) == 200
    columns = edge_columns(run.manifest, run.read(record))
    ids = feature_ids(clean_graph, sorted(set(columns["source"].tolist()) | set(columns["target"].tolist())))
    batch = edge_batch(columns, ids, 100, 200)
    answer = clean_graph.write_transaction(lambda tx: tx.run(
        queries.internal("ingest_edges").text, mark=f"{run.run_id}/{record.file}", offset=100, run=run.run_id,
        key=shard_key(run.run_id, record.file), **batch).data())
    assert answer == []  # the fence turned it away
    assert len(graph_edges(clean_graph, run.run_id)) == 200
    assert shard_marks(clean_graph, run.run_id) == {record.file: 200}


def test_a_bad_value_in_the_last_shard_is_refused_before_anything_is_written(clean_graph, run_dir):
    last = len(read_manifest(run_dir).shards) - 1
    rewrite_shard(run_dir, last, lambda table: with_value(table, "consistency", 7, 1.5))
    with pytest.raises(AtlasError, match=r"edges-\d+\.parquet: row 7, column consistency: .* must be in \[0, 1\]"):
        ingest_run(clean_graph, run_dir)
    assert graph_digest(clean_graph)["nodes"] == {}


def test_a_shard_that_changed_after_the_manifest_is_refused(clean_graph, run_dir):
    shard = run_dir / read_manifest(run_dir).shards[0].file
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(AtlasError, match="checksum does not match"):
        ingest_run(clean_graph, run_dir)
    assert graph_digest(clean_graph)["nodes"] == {}


def test_an_edge_listed_in_two_shards_is_refused(run_dir):
    first = pq.read_table(run_dir / read_manifest(run_dir).shards[0].file)
    rewrite_shard(run_dir, 1, lambda table: pa.concat_tables([table, first.slice(3, 1)]))
    with pytest.raises(AtlasError, match=r"is in two shards \(edges-\d+\.parquet and edges-\d+\.parquet\)"):
        validate_run(run_dir)


def test_incomplete_shards_wait_and_load_once_complete(clean_graph, tmp_path):
    run_dir = make_synthetic_run(tmp_path / "tracing", scale=SCALE, seed=1, features_per_shard=1024, finalized=False)
    manifest = read_manifest(run_dir)
    complete_status = manifest.status
    manifest.status, manifest.shards[-1].status = "running", "running"
    write_manifest(run_dir, manifest)
    report = ingest_run(clean_graph, run_dir)
    assert report.status == "partial" and report.shards_incomplete == [manifest.shards[-1].file]
    assert len(graph_edges(clean_graph, manifest.run_id)) == sum(record.rows for record in manifest.shards[:-1])

    manifest.status, manifest.shards[-1].status = complete_status, "complete"
    write_manifest(run_dir, manifest)
    report = ingest_run(clean_graph, run_dir)
    assert report.status == "loaded" and report.shards_loaded == [manifest.shards[-1].file]
    assert dict(graph_edges(clean_graph, manifest.run_id)) == shard_edges(run_dir)


def test_a_different_run_under_a_loaded_id_is_refused(clean_graph, run_dir, tmp_path):
    ingest_run(clean_graph, run_dir)
    other = make_synthetic_run(tmp_path / "other", scale=SCALE, seed=1, source_layer=4,
                               run_id=read_manifest(run_dir).run_id)
    before = graph_digest(clean_graph)
    with pytest.raises(AtlasError, match="already in the graph with source_layer = 5"):
        ingest_run(clean_graph, other)
    assert graph_digest(clean_graph) == before


def test_adding_then_deleting_a_run_leaves_the_other_run_untouched(clean_graph, run_dir, tmp_path):
    ingest_run(clean_graph, run_dir)
    only_first = graph_digest(clean_graph)
    first_edges = dict(graph_edges(clean_graph, read_manifest(run_dir).run_id))
    second = make_synthetic_run(tmp_path / "L04", scale=SCALE, seed=2, source_layer=4, downstream_layers=(5, 6, 11))
    ingest_run(clean_graph, second)
    assert dict(graph_edges(clean_graph, read_manifest(run_dir).run_id)) == first_edges
    second_id = read_manifest(second).run_id
    assert len(graph_edges(clean_graph, second_id)) == len(shard_edges(second))

    report = delete_run(clean_graph, second_id, batch_size=500)
    assert report.run_deleted and report.edges_deleted == len(shard_edges(second))
    after = graph_digest(clean_graph)
    assert after["relationships"] == only_first["relationships"]
    assert run_state(clean_graph, second_id) is None
    assert dict(graph_edges(clean_graph, read_manifest(run_dir).run_id)) == first_edges
    # The second run's features stay (annotations may hang on them); only its edges and Run node are gone.
    assert after["nodes"]["Run"] == 1 and after["nodes"]["Feature"] >= only_first["nodes"]["Feature"]


def test_deleting_a_run_whose_load_stopped_half_way_removes_the_half_written_shard_too(clean_graph, run_dir):
    # The delete finds edges by shard key: a shard being written is known only from its ShardLoad mark.
    first_shard_rows = load_stopped_in_second_shard(clean_graph, run_dir)
    run_id = read_manifest(run_dir).run_id
    partial = len(graph_edges(clean_graph, run_id))
    assert partial > first_shard_rows and shard_marks(clean_graph, run_id)

    report = delete_run(clean_graph, run_id, batch_size=70)
    assert report.run_deleted and report.edges_deleted == partial
    assert clean_graph.read("MATCH ()-[edge:AFFECTS]->() RETURN count(edge) AS n")[0]["n"] == 0
    assert run_state(clean_graph, run_id) is None and shard_marks(clean_graph, run_id) == {}


def test_deleting_an_unknown_run_is_an_error(clean_graph):
    with pytest.raises(AtlasError, match="no run 'nope' in the graph"):
        delete_run(clean_graph, "nope")




def test_cli_ingests_reruns_and_deletes_with_json(clean_graph, run_dir):
    first = run_atlas("ingest", str(run_dir), "--json")
    assert first.returncode == 0, first.stderr
    [report] = json.loads(first.stdout)
    assert report["status"] == "loaded" and report["edges_written"] == len(shard_edges(run_dir))
    [again] = json.loads(run_atlas("ingest", str(run_dir), "--json").stdout)
    assert again["edges_written"] == 0
    deleted = json.loads(run_atlas("ingest", "--delete", report["run_id"], "--json").stdout)
    assert deleted == {"run_id": report["run_id"], "edges_deleted": report["edges_written"], "run_deleted": True}


def test_cli_reports_a_bad_shard_in_one_line_and_exits_non_zero(clean_graph, run_dir):
    rewrite_shard(run_dir, 0, lambda table: with_value(table, "d", 2, float("nan")))
    result = run_atlas("ingest", str(run_dir), "--quiet")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "row 2, column d" in result.stderr and "NaN" in result.stderr

