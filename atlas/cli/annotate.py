"""`atlas annotate`: SAE feature catalogs, their enrichment annotations and GMT gene sets into the graph.

Each option below is one source of annotation rows (:func:`loaders.annotations.annotation_rows`); every source is
read and checked before the database is touched, then all rows are MERGEd (reruns change nothing). A new source
is one more option plus one function that returns rows.
"""

from __future__ import annotations

from pathlib import Path

import click

from atlas.cli.output import emit_json, emit_mapping, progress_bar
from atlas.errors import AtlasError


@click.command()
@click.option("--sae-atlas", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="SAE atlas root with layerNN_xE_kK/feature_catalog.json (+ feature_annotations.json).")
@click.option("--model", help="Model name in feature uids; must equal the 'model' of the run manifests.")
@click.option("--sae", help="SAE set name in feature uids (default: the --sae-atlas directory name).")
@click.option("--layers", help="Only these catalog layers, comma-separated (default: all).")
@click.option("--gmt", "gmt_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="GMT gene-set file -> Term + MEMBER_OF (repeatable).")
@click.option("--enrich", "enrich_gmt", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="GMT file: annotate the --sae-atlas features by Fisher enrichment of their top genes (BH-adjusted), "
                   "write feature_annotations.json, then load catalogs and gene sets.")
@click.option("--source", help="Library name for the Term ids of the GMT file(s) (default: each file's name).")
@click.option("--batch-size", default=5_000, show_default=True, help="Rows per write transaction.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def annotate(sae_atlas: Path | None, model: str | None, sae: str | None, layers: str | None,
             gmt_files: tuple[Path, ...], enrich_gmt: Path | None, source: str | None, batch_size: int, as_json: bool,
             quiet: bool) -> None:
    """Load feature catalogs (activation frequency, top genes, enrichment terms, label) and GMT gene sets.

    Feature uids are MODEL/SAE/LNN/FNNNN, so --model and --sae must match the runs' manifests for annotations to
    land on the traced features. Gene sets become Term nodes with id LIBRARY:NAME and MEMBER_OF edges from genes.

    \b
    Examples:
      atlas annotate --sae-atlas saes/ --model Geneformer-V2-316M --sae saes
      atlas annotate --gmt c2.cp.kegg.v2023.gmt --gmt h.all.v2023.gmt --json
      atlas annotate --sae-atlas saes/ --model gf --layers 5,6 --gmt GO_Biological_Process_2023.gmt
      atlas annotate --sae-atlas saes/ --model gf --enrich atlas/data/markers.gmt
    """
    from atlas.db.connection import connect
    from atlas.ranges import parse_ranges
    from loaders.annotations import annotation_rows, load_annotations

    if not sae_atlas and not gmt_files:
        raise AtlasError("nothing to load: give --sae-atlas DIR and/or --gmt FILE (see atlas annotate --help)")
    if enrich_gmt and not sae_atlas:
        raise AtlasError("--enrich annotates the features of --sae-atlas DIR: give both")
    gmt_files = (*gmt_files, enrich_gmt) if enrich_gmt else gmt_files
    if batch_size < 1:
        raise AtlasError(f"--batch-size must be at least 1, got {batch_size}")
    layer_list = parse_ranges(layers, "layers") if layers else None
    if enrich_gmt:
        from atlas.enrichment import enrich_atlas

        enrich_atlas(sae_atlas, enrich_gmt, source=source, layers=layer_list)
    rows = annotation_rows(sae_atlas, model, sae, layer_list, gmt_files, source)
    counts = rows.counts()
    with connect() as graph, progress_bar(not (quiet or as_json), total=sum(counts.values()), desc="annotate",
                                          unit="row", unit_scale=True) as bar:
        counters = load_annotations(graph, rows, batch_size=batch_size, progress=bar.update)
    created = {key: counters.get(key, 0) for key in ("nodes_created", "relationships_created", "properties_set")}
    if as_json:
        emit_json({"rows": counts, **created})
    else:
        emit_mapping({**counts, **created}, title="annotations loaded")
