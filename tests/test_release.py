"""Atlas releases against real Neo4j servers: an annotated run with experiment results is released from the test
server and loaded into a second, separate managed instance (its own ATLAS_HOME and ports) online, offline and from
a dump, each giving the source's content digest; feature documents equal the explorer's API; bad releases refused
with the second atlas unchanged."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest

from atlas.catalog import read_catalogs
from atlas.db import server
from atlas.db.connection import Graph, connect
from atlas.errors import AtlasError
from atlas.gmt import read_gmt
from atlas.release import create_release, load_release, verify_release
from atlas.releaseformat import RELEASE_JSON, document_path, table_path
from benchmarks.synthetic import make_synthetic_run
from loaders.annotations import catalog_rows, gene_set_rows, load_annotations
from loaders.digest import graph_digest
from loaders.online import ingest_run
from tests.cli import atlas_env, run_atlas
from tests.conftest import wipe
from tests.explorer import ExplorerServer, free_port
from tests.test_annotate import GMT, build_sae_atlas

pytestmark = [pytest.mark.neo4j, pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")),
                                                    reason="the second instance and the dump need managed servers")]
MODEL, SAE = "tiny-gf", "tiny-saes"
RUN = "synthetic-L05-s3"


class SecondInstance:
    """A second managed Neo4j (own ATLAS_HOME, free ports); :meth:`active` points the process's settings at it."""

    def __init__(self, home: Path):
        self.variables = {"ATLAS_HOME": str(home), "ATLAS_BOLT_PORT": str(free_port()),
                          "ATLAS_HTTP_PORT": str(free_port()), "ATLAS_NEO4J_HEAP": "512m",
                          "ATLAS_NEO4J_PAGECACHE": "256m"}

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.variables.items():
                patch.setenv(name, value)
            yield

    def digest(self) -> dict:
        with self.active(), connect() as graph:
            return graph_digest(graph)

    def wipe(self) -> None:
        with self.active(), connect() as graph:
            wipe(graph)


@pytest.fixture(scope="module")
def second(tmp_path_factory) -> Iterator[SecondInstance]:
    instance = SecondInstance(tmp_path_factory.mktemp("second-atlas"))
    with instance.active():
        config = server.start(server.ServerConfig.from_env(), progress=lambda message: None)
    try:
        yield instance
    finally:
        server.stop(config)


def build_source(graph: Graph, root: Path) -> str:
    """The test server emptied and given a finalised run, SAE catalogs, a GMT library, an interaction and a steering
    result; returns the uid of the run's first source feature."""
    wipe(graph)
    run_dir = make_synthetic_run(root / "L05", scale=0.002, seed=3, model=MODEL, sae=SAE, finalized=True)
    ingest_run(graph, run_dir)
    (root / "hallmark.gmt").write_text(GMT)
    rows = catalog_rows(read_catalogs(build_sae_atlas(root / "saes")).values(), MODEL, SAE)
    load_annotations(graph, rows.merge(gene_set_rows(read_gmt(root / "hallmark.gmt"), "hallmark")))
    hub = graph.read("MATCH (f:Feature)-[:AFFECTS]->() RETURN f.uid AS uid, count(*) AS degree "
                     "ORDER BY degree DESC, uid LIMIT 2")
    graph.write("MATCH (f:Feature {uid: $uid}), (g:Feature {uid: $other}) "
                "CREATE (:Run {id: 'ablate-1', kind: 'ablation', model: $model, sae: $sae}) "
                "CREATE (:Run {id: 'steer-1', kind: 'steering', model: $model, sae: $sae}) "
                "CREATE (s:Steering {id: 'steer-1/a2', run: 'steer-1', alpha: 2.0, mean_ds: 0.25, "
                "top_up: ['CD3E'], top_down: []})-[:STEERS {run: 'steer-1'}]->(f) "
                "CREATE (i:Interaction {id: 'ablate-1/set-1', run: 'ablate-1', order: 2, members: [$uid, $other], "
                "median_redundancy: 0.6})-[:HAS_MEMBER {position: 0}]->(f) "
                "CREATE (i)-[:HAS_MEMBER {position: 1}]->(g) "
                "CREATE (i)-[:INTERACTS_ON {run: 'ablate-1', redundancy: 0.5, class: 'subadditive'}]->(g)",
                uid=hub[0]["uid"], other=hub[1]["uid"], model=MODEL, sae=SAE)
    return hub[0]["uid"]


@pytest.fixture(scope="module")
def source(graph, tmp_path_factory) -> dict:
    """The released atlas: its digest, its hub's uid and a release of its run with a dump."""
    root = tmp_path_factory.mktemp("release-source")
    hub = build_source(graph, root)
    digest = graph_digest(graph)
    release = root / "release"
    summary = create_release(graph, release, [RUN], licence="CC-BY-4.0", citation="Test et al.", dump=True, tar=True)
    return {"digest": digest, "hub": hub, "release": release, "summary": summary}


@pytest.fixture
def bad_copy(source, tmp_path) -> Path:
    copy = tmp_path / "release"
    shutil.copytree(source["release"], copy)
    return copy


def test_release_describes_itself_and_passes_verification(source):
    release = json.loads((source["release"] / RELEASE_JSON).read_text())
    assert release["format_version"] == 1 and release["licence"] == "CC-BY-4.0"
    assert [run["id"] for run in release["runs"]] == [RUN]
    assert release["counts"]["edges"] == source["digest"]["relationships"]["AFFECTS"]
    assert release["counts"]["features"] == source["digest"]["nodes"]["Feature"]
    assert release["counts"]["interactions"] == 1 and release["counts"]["steering"] == 1
    assert set(release["files"]) >= {table_path("features"), "dump/neo4j.dump"}
    assert verify_release(source["release"]) == []
    assert Path(source["summary"]["tar"]).is_file()
    verified = run_atlas("release", "verify", str(source["release"]))
    assert verified.returncode == 0, verified.stderr


def test_edge_tables_carry_every_statistic_of_the_graph(source, graph):
    edges = pq.read_table(next((source["release"] / "runs" / RUN).glob("*.parquet"))).to_pylist()
    row = edges[0]
    stored = graph.read("MATCH (s:Feature {layer: $layer, index: $source})-[e:AFFECTS]->"
                        "(t:Feature {layer: $target_layer, index: $target}) RETURN properties(e) AS e",
                        layer=row["source_layer"], source=row["source_feature"], target_layer=row["target_layer"],
                        target=row["target_feature"])[0]["e"]
    assert {name: pytest.approx(row[name]) for name in ("d", "mean", "std", "consistency", "n", "p", "q")} == \
        {name: stored[name] for name in ("d", "mean", "std", "consistency", "n", "p", "q")}


def test_feature_documents_equal_the_explorer_api(source):
    uids = [source["hub"], *pq.read_table(source["release"] / table_path("features")).column("uid").to_pylist()[:3]]
    with ExplorerServer() as explorer:
        for uid in uids:
            document = json.loads((source["release"] / document_path(uid)).read_text())
            assert document == explorer.json(f"/api/features/{quote(uid, safe='/')}")


def test_online_load_into_a_second_atlas_gives_the_same_content_and_reloading_is_a_no_op(source, second):
    second.wipe()
    with second.active():
        first = load_release(source["release"])
        again = load_release(source["release"])
    assert first["loaded"] == [RUN] and first["edges_written"] == source["digest"]["relationships"]["AFFECTS"]
    assert second.digest() == source["digest"]
    assert again["loaded"] == [] and again["already_present"] == [RUN] and again["edges_written"] == 0
    assert second.digest() == source["digest"]


@pytest.mark.slow
def test_offline_load_into_a_fresh_second_atlas_gives_the_same_content(source, second):
    with second.active():
        load_release(source["release"], mode="offline", force=True)
    assert second.digest() == source["digest"]


@pytest.mark.slow
def test_dump_restore_into_a_second_atlas_gives_the_same_content(source, second):
    second.wipe()
    with second.active():
        load_release(source["release"], mode="dump", force=True)
    assert second.digest() == source["digest"]


def _change_file(release: Path) -> str:
    edges = next((release / "runs" / RUN).glob("*.parquet"))
    edges.write_bytes(edges.read_bytes()[:-100])
    return "checksum does not match"


def _remove_table(release: Path) -> str:
    (release / table_path("feature_terms")).unlink()
    return "table feature_terms is missing"


def _wrong_version(release: Path) -> str:
    data = json.loads((release / RELEASE_JSON).read_text())
    (release / RELEASE_JSON).write_text(json.dumps({**data, "format_version": 99}))
    return "version 99 is not supported"


@pytest.mark.parametrize("corrupt", [_change_file, _remove_table, _wrong_version])
def test_a_corrupted_release_is_refused_in_one_line_and_the_atlas_is_unchanged(source, second, bad_copy, corrupt):
    expected = corrupt(bad_copy)
    second.wipe()
    before = second.digest()
    assert any(expected in problem for problem in verify_release(bad_copy))
    with second.active(), pytest.raises(AtlasError, match="not a sound release, nothing was loaded"):
        load_release(bad_copy)
    assert second.digest() == before
    verified = run_atlas("release", "verify", str(bad_copy))
    assert verified.returncode == 1 and expected in verified.stderr
    loaded = run_atlas("release", "load", bad_copy, env=atlas_env(**second.variables))
    assert loaded.returncode == 1 and len(loaded.stderr.strip().splitlines()) == 1
    assert "Traceback" not in loaded.stderr


def test_a_run_present_with_other_content_is_refused_and_the_atlas_is_unchanged(source, second, bad_copy):
    second.wipe()
    with second.active():
        load_release(source["release"])
    before = second.digest()
    data = json.loads((bad_copy / RELEASE_JSON).read_text())
    data["runs"][0]["manifest"]["n_cells"] += 1  # same run id, other content
    (bad_copy / RELEASE_JSON).write_text(json.dumps(data))
    with second.active(), pytest.raises(AtlasError, match=f"run {RUN} is already in the atlas with other content"):
        load_release(bad_copy)
    assert second.digest() == before


def test_an_unknown_run_is_refused_in_one_line(graph, source, tmp_path):
    created = run_atlas("release", "create", str(tmp_path / "out"), "--run", "no-such-run")
    assert created.returncode == 1 and "no traced run 'no-such-run'" in created.stderr
    assert len(created.stderr.strip().splitlines()) == 1
