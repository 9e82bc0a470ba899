"""`atlas ingest`: trace runs into the graph (online over Bolt, or offline with neo4j-admin import), or remove one."""

from __future__ import annotations

from pathlib import Path

import click

from atlas.cli.output import StageBars, emit_json, emit_mapping
from atlas.errors import AtlasError


@click.command()
@click.argument("run_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--batch-size", default=10_000, show_default=True, help="Edges per write transaction (online).")
@click.option("--streams", default=2, show_default=True,
              help="Shards loaded concurrently (online); 1 on a machine whose cores are busy.")
@click.option("--delete", "delete_run", metavar="RUN_ID", help="Remove this run's edges and Run node instead.")
@click.option("--unlock", "unlock_run", metavar="RUN_ID",
              help="Remove this run's load lock, left by a writer on another machine that is gone.")
@click.option("--offline", is_flag=True,
              help="Bulk import into a fresh managed database with neo4j-admin (stops and restarts the server).")
@click.option("--force", is_flag=True, help="With --offline: replace a database that is not empty.")
@click.option("--sae-atlas", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="With --offline: also import this SAE atlas's catalogs (as atlas annotate --sae-atlas).")
@click.option("--model", help="With --sae-atlas: model name in feature uids (default: the runs' model).")
@click.option("--sae", help="With --sae-atlas: SAE set name in feature uids (default: the runs' sae).")
@click.option("--gmt", "gmt_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --offline: also import this GMT gene-set file (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def ingest(run_dirs: tuple[Path, ...], batch_size: int, streams: int, delete_run: str | None,
           unlock_run: str | None, offline: bool, force: bool, sae_atlas: Path | None, model: str | None,
           sae: str | None, gmt_files: tuple[Path, ...], as_json: bool, quiet: bool) -> None:
    """Load trace run directories into the graph: every shard validated first, each loaded exactly once.

    Reruns are safe: loaded shards are skipped, a shard whose load was interrupted is cleaned and reloaded, and a
    run that grew new shards gets only those. One writer per run at a time: a second `atlas ingest` of a run that
    is being loaded or deleted is refused (a lock left by a killed writer on this machine is taken over).
    Works against the managed server or any NEO4J_URI (cluster too).
    --offline builds a fresh atlas with neo4j-admin import instead (managed server only; it replaces the
    database 'neo4j' and refuses a non-empty one unless --force); the resulting graph is the same.

    \b
    Examples:
      atlas ingest runs/L05                       # online, batched UNWIND over Bolt
      atlas ingest runs/L05 runs/L11 --json
      atlas ingest --delete L05-20cells            # remove exactly that run's edges and Run node
      atlas ingest --unlock L05-20cells            # its writer died on another machine
      atlas ingest --offline runs/L05 runs/L11 --sae-atlas saes/ --gmt h.all.gmt
    """
    if unlock_run is not None:
        if run_dirs or delete_run or offline:
            raise AtlasError("--unlock RUN_ID goes alone")
        from atlas.db.connection import connect
        from loaders.lock import unlock

        with connect() as graph:
            result = {"run_id": unlock_run, "lock_removed": unlock(graph, unlock_run)}
        if as_json:
            emit_json(result)
        else:
            emit_mapping(result, title="unlock")
        return
    if not offline and (force or sae_atlas or gmt_files):
        raise AtlasError("--force, --sae-atlas and --gmt go with --offline (online, use atlas annotate)")
    if offline:
        if delete_run is not None or not run_dirs:
            raise AtlasError("--offline needs run directories (and cannot be combined with --delete)")
        from loaders.ingest import import_runs_offline

        result = import_runs_offline(run_dirs, sae_atlas=sae_atlas, model=model, sae=sae, gmt_files=gmt_files,
                                     force=force, progress=StageBars(not (quiet or as_json), "item")).as_dict()
        if as_json:
            emit_json(result)
        else:
            emit_mapping({key: value for key, value in result.items() if key != "rows"} | result["rows"],
                         title="offline import")
        return
    if delete_run is not None:
        if run_dirs:
            raise AtlasError("give either run directories to load or --delete RUN_ID, not both")
        from atlas.db.connection import connect
        from loaders.online import delete_run as remove

        with connect() as graph:
            result = vars(remove(graph, delete_run, batch_size=batch_size))
        if as_json:
            emit_json(result)
        else:
            emit_mapping(result, title="deleted")
        return
    if not run_dirs:
        raise AtlasError("no run directory given (atlas ingest RUN_DIR ...; see atlas ingest --help)")
    from atlas.db.connection import connect
    from loaders.ingest import load_runs

    bars = StageBars(not (quiet or as_json), "item")
    with connect() as graph:
        reports = [report.as_dict()
                   for report in load_runs(graph, run_dirs, batch_size=batch_size, streams=streams, progress=bars)]
    if as_json:
        emit_json(reports)
        return
    for report in reports:
        emit_mapping({key: report[key] for key in ("status", "edges_written", "edges_per_second", "seconds")}
                     | {"shards loaded": len(report["shards_loaded"]),
                        "shards already in": len(report["shards_already_loaded"]),
                        "shards incomplete (skipped)": len(report["shards_incomplete"]),
                        "shards recovered": len(report["recovered_shards"])},
                     title=f"run {report['run_id']}")
