"""The offline bulk path (neo4j-admin import into the managed server) against the online loaders."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from atlas.catalog import read_catalogs
from atlas.db.connection import connect
from atlas.errors import AtlasError
from atlas.gmt import read_gmt
from benchmarks.synthetic import make_synthetic_run
from loaders.annotations import catalog_rows, gene_set_rows, load_annotations
from loaders.digest import graph_digest
from loaders.offline import bulk_import, write_import_files
from loaders.online import ingest_run
from loaders.runs import validate_run
from loaders.schema import NODE_TYPES
from tests.cli import run_atlas
from tests.test_annotate import GMT, build_sae_atlas

pytestmark = [pytest.mark.neo4j, pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")),
                                                    reason="the offline import needs the managed server")]
MODEL, SAE = "tiny-gf", "tiny-saes"


@pytest.fixture
def inputs(tmp_path):
    """Two runs (layers 5 and 6) whose features overlap the tiny SAE atlas, plus catalog and GMT rows."""
    runs = [make_synthetic_run(tmp_path / "L05", scale=0.002, seed=3, model=MODEL, sae=SAE, finalized=True),
            make_synthetic_run(tmp_path / "L06", scale=0.001, seed=4, model=MODEL, sae=SAE, source_layer=6,
                               downstream_layers=(7, 11, 17), finalized=False)]
    gmt = tmp_path / "hallmark.gmt"
    gmt.write_text(GMT)
    rows = catalog_rows(read_catalogs(build_sae_atlas(tmp_path / "saes")).values(), MODEL, SAE)
    return runs, rows.merge(gene_set_rows(read_gmt(gmt), "hallmark"))


def fresh_driver(graph) -> None:
    """Give the shared test connection a new driver: the old one's bookmarks name transactions of the replaced
    database, which the imported one never reaches (every live client must reconnect after an offline import)."""
    fresh = connect(graph.settings)
    graph.driver.close()
    graph.driver = fresh.driver


def test_import_files_are_typed_from_the_schema(tmp_path, inputs):
    runs, rows = inputs
    files = write_import_files(tmp_path / "import", [validate_run(run) for run in runs], rows)
    header = (files.directory / "AFFECTS.header.csv").read_text().strip().split(",")
    assert header[:2] == [":START_ID(Feature)", ":END_ID(Feature)"]
    # The shards' float32 statistics keep their type: neo4j-admin widens `float` to the double the online loader stores.
    assert {"d:float", "n:long", "run:string", "sign:string", "q:float", "perm_p:float"} <= set(header)
    # Nodes are named by integer row ids (not stored); the key is an ordinary typed property.
    assert (files.directory / "Run.header.csv").read_text().startswith(":ID(Run),id:string,")
    assert files.multiline == [] and not any("multiline" in argument for argument in files.arguments())
    assert "downstream_layers:long[]" in (files.directory / "Run.header.csv").read_text()
    assert files.rows["AFFECTS"] == sum(validate_run(run).edge_count for run in runs)
    assert files.rows["Feature"] >= len(rows.features)


def test_float_statistics_are_written_as_the_shortest_text_of_their_float32(tmp_path, inputs):
    runs, _ = inputs
    run = validate_run(runs[0])
    files = write_import_files(tmp_path / "import", [run])
    header = (files.directory / "AFFECTS.header.csv").read_text().strip().split(",")
    text = pcsv.read_csv(files.directory / "AFFECTS.csv",
                         read_options=pcsv.ReadOptions(column_names=header),
                         convert_options=pcsv.ConvertOptions(column_types={"d:float": pa.string()}))["d:float"]
    shards = pa.concat_tables(run.read(record) for record in run.shards)["d"]
    assert pc.cast(text, pa.float32()).equals(shards)  # each text reads back as the shard's float32
    assert pc.max(pc.utf8_length(text)).as_py() <= len("-1.2345678e-10")  # not a double's 17 digits


@pytest.mark.slow
def test_offline_import_builds_the_same_graph_as_the_online_loaders(clean_graph, inputs):
    runs, rows = inputs
    for run in runs:
        ingest_run(clean_graph, run)
    load_annotations(clean_graph, rows)
    online = graph_digest(clean_graph)

    report = bulk_import([validate_run(run) for run in runs], rows, force=True)
    fresh_driver(clean_graph)
    offline = graph_digest(clean_graph)
    assert offline == online
    assert report.edges == online["relationships"]["AFFECTS"]
    assert online["relationships"].keys() == {"AFFECTS", "TOP_GENE", "ENRICHED_IN", "MEMBER_OF"}
    constraints = clean_graph.read("SHOW CONSTRAINTS YIELD name RETURN count(*) AS n")[0]["n"]
    assert constraints == len(NODE_TYPES)
    # The imported run behaves like an online-loaded one: a rerun of the online loader writes nothing.
    assert ingest_run(clean_graph, runs[0]).edges_written == 0
    assert graph_digest(clean_graph) == online


@pytest.mark.slow
def test_a_value_with_line_breaks_is_imported_intact_and_only_its_file_parsed_as_multiline(clean_graph, inputs,
                                                                                           tmp_path):
    runs, rows = inputs
    description = "first line\nsecond line\r\nthird"
    term = rows.add_term("notes", "multi-line", description)
    files = write_import_files(tmp_path / "import", [validate_run(runs[0])], rows)
    assert files.multiline == [files.directory / "Term.csv"]
    assert f"--multiline-fields={files.directory / 'Term.csv'}" in files.arguments()

    bulk_import([validate_run(runs[0])], rows, force=True)
    fresh_driver(clean_graph)
    stored = clean_graph.read("MATCH (t:Term {id: $id}) RETURN t.description AS text", id=term)
    assert stored == [{"text": description}]


def test_offline_import_refuses_a_database_that_is_not_empty(clean_graph, inputs):
    runs, rows = inputs
    clean_graph.write("CREATE (:Term {id: 'keep:me', name: 'me', source: 'keep'})")
    before = graph_digest(clean_graph)
    with pytest.raises(AtlasError, match=r"is not empty \(1 nodes\).*--force"):
        bulk_import([validate_run(runs[0])], rows)
    assert graph_digest(clean_graph) == before


def test_cli_offline_refusal_is_one_line(clean_graph, inputs):
    runs, _ = inputs
    clean_graph.write("CREATE (:Term {id: 'keep:me', name: 'me', source: 'keep'})")
    result = run_atlas("ingest", "--offline", runs[0], "--quiet")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "is not empty" in result.stderr and graph_digest(clean_graph)["nodes"] == {"Term": 1}
