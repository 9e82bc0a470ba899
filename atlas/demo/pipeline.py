"""`atlas demo`: real PBMCs -> small Geneformer-shaped model -> SAEs -> catalog -> annotation -> exhaustive trace of
one source layer -> Neo4j -> analyses + HTML report.

Every step after the model is an ordinary `atlas` command, run in this process and echoed first, so the demo
shows exactly what a user types for real data. Everything lives under ``$ATLAS_HOME/demo``; the model and the
SAEs are cached by a key (cells digest + configuration), so a second demo only re-runs the cheap steps; a finished
trace run is skipped by `atlas trace run` itself and a re-ingest changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from atlas.cells import load_cells
from atlas.demo.data import write_demo_data
from atlas.demo.model import ModelConfig, cached_demo_model
from atlas.explorer import explorer_url
from atlas.settings import atlas_home

SAE_KEY_FILE = "demo_saes.json"


@dataclass(frozen=True)
class DemoSizes:
    """How big the demo is: the default fits in minutes on 2 CPU cores; tests use :meth:`tiny`.

    ``name`` prefixes the model, SAE set and run names, so demos of different sizes never share feature uids.
    """

    name: str = "pbmc"
    model: ModelConfig = field(default_factory=ModelConfig)
    n_cells: int | None = None
    sae_k: int = 32
    sae_epochs: int = 10
    sae_batch_size: int = 1024
    sae_learning_rate: float = 2e-3
    source_layer: int = 1
    trace_cells: int = 20
    trace_batch_size: int = 64

    @property
    def model_name(self) -> str:
        """The model directory's name, which is the model part of feature uids."""
        return f"{self.name}-geneformer-demo"

    @property
    def sae_set(self) -> str:
        """The SAE directory's name, the SAE part of feature uids."""
        return f"{self.name}-saes"

    @classmethod
    def tiny(cls) -> DemoSizes:
        """A seconds-long demo for tests: 3 layers of width 32 on 60 cells, 6 traced cells."""
        return cls(name="pbmc-tiny", model=ModelConfig(n_layers=3, d_model=32, n_heads=2, max_length=48, epochs=1),
                   n_cells=60, sae_k=8, sae_epochs=3, trace_cells=6)


@dataclass
class DemoResult:
    """Where the demo put things, and how long each step took."""

    home: Path
    model_dir: Path
    sae_dir: Path
    run_dir: Path
    run_id: str
    report: Path
    model_trained: bool
    saes_trained: bool
    seconds: dict[str, float] = field(default_factory=dict)


def markers_gmt() -> Path:
    """The curated PBMC marker gene sets shipped with the package (sources named in each line)."""
    return Path(str(resources.files("atlas") / "data" / "markers.gmt"))


def run_atlas(arguments: list[str], echo: Callable[[str], None]) -> None:
    """Run one `atlas` command line in this process, echoing it first (errors propagate as AtlasError)."""
    from atlas.cli import cli

    echo("$ atlas " + " ".join(arguments))
    cli.main(arguments, prog_name="atlas", standalone_mode=False)


def _cached(key_file: Path, key: dict) -> bool:
    return key_file.is_file() and json.loads(key_file.read_text()) == key


def _start_server_in_background(echo: Callable[[str], None]) -> Future:
    """`atlas db start` in a thread: Neo4j boots while the model and SAEs train; errors surface at result()."""
    from atlas.db import server

    echo("$ atlas db start   (in the background)")
    executor = ThreadPoolExecutor(max_workers=1)
    started = executor.submit(server.start, progress=lambda message: echo(f"      {message}"))
    executor.shutdown(wait=False)
    return started


def run_demo(home: Path | None = None, sizes: DemoSizes = DemoSizes(), *, start_server: bool = True,
             echo: Callable[[str], None] = print) -> DemoResult:
    """Run the whole pipeline under ``home`` (default ``$ATLAS_HOME/demo``) and return where everything is."""
    home = Path(home) if home is not None else atlas_home() / "demo"
    # The demo's matrices are tiny (width 64): a second intra-op thread only waits on the first
    # (benchmarks/README.md, "Demo").
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_steps(home, sizes, start_server, echo)
    finally:
        torch.set_num_threads(threads)


def _run_steps(home: Path, sizes: DemoSizes, start_server: bool, echo: Callable[[str], None]) -> DemoResult:
    seconds: dict[str, float] = {}
    steps = 8

    def step(number: int, title: str) -> Callable[[], None]:
        echo(f"\n[{number}/{steps}] {title}")
        started = time.perf_counter()

        def done() -> None:
            seconds[title] = round(time.perf_counter() - started, 1)
            echo(f"      ({seconds[title]} s)")
        return done

    done = step(1, "Neo4j + GDS (managed local server), started in the background while the model trains")
    server = _start_server_in_background(echo) if start_server else None
    done()

    done = step(2, "real cells: the 700 PBMCs bundled with scanpy, rank-value encoded")
    data = write_demo_data(home / "data")
    max_length = sizes.model.max_length
    cells = load_cells(data.h5ad, token_dictionary=data.token_dictionary,
                       gene_median_dictionary=data.gene_median_dictionary, max_length=max_length,
                       n_cells=sizes.n_cells)
    vocab_size = len(json.loads(data.token_dictionary.read_text()))
    echo(f"      {cells.n_cells} cells, {data.n_genes} genes, up to {max_length} tokens per cell; "
         f"digest {cells.digest[:12]}")
    cell_args = ["--cells", str(data.h5ad), "--token-dictionary", str(data.token_dictionary),
                 "--gene-median-dictionary", str(data.gene_median_dictionary), "--max-length", str(max_length)]
    training_cells = ["--n-cells", str(sizes.n_cells)] if sizes.n_cells is not None else []
    trace_cells = min(sizes.trace_cells, cells.n_cells)
    done()

    done = step(3, "model: a small Geneformer-shaped BertForMaskedLM, masked-gene prediction")
    model_dir, model_trained = cached_demo_model(
        home / sizes.model_name, cells.input_ids, cells.digest, vocab_size, sizes.model,
        progress=lambda epoch, loss: echo(f"      epoch {epoch}/{sizes.model.epochs}: masked-gene loss {loss:.3f}"))
    echo(f"      {'trained and cached' if model_trained else 'cached model reused'}: {model_dir}")
    done()

    done = step(4, "SAEs: TopK (4x, centred, unit-norm decoder) per layer + feature catalogs")
    sae_dir = home / sizes.sae_set
    sae_key = {"model": json.loads((model_dir / "demo_model.json").read_text()), "k": sizes.sae_k,
               "epochs": sizes.sae_epochs, "batch_size": sizes.sae_batch_size, "lr": sizes.sae_learning_rate}
    saes_trained = not _cached(sae_dir / SAE_KEY_FILE, sae_key)
    if saes_trained:
        (sae_dir / SAE_KEY_FILE).unlink(missing_ok=True)
        run_atlas(["sae", "train", "--model", str(model_dir), *cell_args, *training_cells, "--out", str(sae_dir), "-k",
                   str(sizes.sae_k), "--epochs", str(sizes.sae_epochs), "--batch-size", str(sizes.sae_batch_size),
                   "--lr", str(sizes.sae_learning_rate), "--device", "cpu"], echo)
        (sae_dir / SAE_KEY_FILE).write_text(json.dumps(sae_key, indent=2))
    else:
        echo(f"      cached SAEs reused: {sae_dir}")
    done()

    done = step(5, "annotation: Fisher enrichment of top genes in PBMC marker sets (BH), loaded into Neo4j")
    if server is not None:
        server.result()
    run_atlas(["db", "init"], echo)
    run_atlas(["annotate", "--sae-atlas", str(sae_dir), "--model", sizes.model_name, "--sae", sizes.sae_set,
               "--enrich", str(markers_gmt()), "--quiet"], echo)
    done()

    done = step(6, f"exhaustive trace: every active feature of layer {sizes.source_layer} into all later layers")
    # the run id names the SAEs it traced (a digest of their key), so retrained SAEs never meet an old run
    sae_digest = hashlib.sha256(json.dumps(sae_key, sort_keys=True).encode()).hexdigest()[:6]
    run_id = f"{sizes.name}-demo-L{sizes.source_layer:02d}-{sae_digest}"
    run_dir = home / "runs" / run_id
    run_atlas(["trace", "plan", "--model", str(model_dir), "--saes", str(sae_dir), *cell_args,
               "--n-cells", str(trace_cells), "--source-layer", str(sizes.source_layer),
               "--batch-size", str(sizes.trace_batch_size), "--run-id", run_id, "--out", str(run_dir)], echo)
    run_atlas(["trace", "run", str(run_dir), "--device", "cpu"], echo)
    done()

    done = step(7, "ingest: every significant edge into Neo4j")
    run_atlas(["ingest", str(run_dir)], echo)
    done()

    done = step(8, "analyses + report: degrees, hubs, unannotated hubs, attenuation, heavy tail, annotation bias")
    report_dir = home / "reports" / run_id
    # the paper's hub rule (> 1000 edges) is for 4,608-feature layers; the demo's 256 features use the top 5%
    run_atlas(["report", "--run", run_id, "--percentile", "95", "--out", str(report_dir),
               "--explorer-url", explorer_url()], echo)
    done()
    return DemoResult(home=home, model_dir=model_dir, sae_dir=sae_dir, run_dir=run_dir, run_id=run_id,
                      report=report_dir / "report.html", model_trained=model_trained, saes_trained=saes_trained,
                      seconds=seconds)

