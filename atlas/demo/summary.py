"""What the demo tells the user at the end: where the report is, how to browse the graph, what to query next."""

from __future__ import annotations

import os
import shlex
from collections import Counter
from pathlib import Path

from atlas.demo.pipeline import DemoResult
from atlas.explorer import DEFAULT_PORT, explorer_url


def top_hub(run_id: str) -> dict | None:
    """The run's feature with the most outgoing edges (uid, label), read with the library's `hubs` query."""
    import queries
    from atlas.db.connection import connect

    hubs = queries.get("hubs")
    with connect() as graph:
        rows = graph.read(hubs.text, **hubs.bind({"run": run_id, "limit": "1"}))
    return rows[0] if rows else None


def most_enriched_term(sae_dir: Path) -> str | None:
    """The gene set most features of the SAE atlas are enriched in, from its catalogs (None when none is)."""
    from atlas.catalog import read_catalogs

    terms = Counter(annotation.term for catalog in read_catalogs(sae_dir).values()
                    for feature in catalog.features for annotation in feature.annotations)
    return min(terms, key=lambda term: (-terms[term], term)) if terms else None


def next_steps(result: DemoResult, port: int = DEFAULT_PORT) -> dict:
    """Report path, Neo4j Browser address, three `atlas query` commands that work on this demo's graph and the
    explorer's command and address (on ``port``)."""
    from atlas.db.server import ServerConfig

    if os.environ.get("NEO4J_URI"):
        bolt = os.environ["NEO4J_URI"]
        browser = "your Neo4j Browser (the server at NEO4J_URI)"
        password_file = "NEO4J_PASSWORD"
    else:
        config = ServerConfig.from_env()
        bolt, password_file = config.bolt_uri, str(config.password_file)
        browser = config.browser_url
    hub = top_hub(result.run_id)
    term = most_enriched_term(result.sae_dir)
    run = shlex.quote(f"run={result.run_id}")
    commands = [f"atlas query hubs -p {run} -p limit=10"]
    if hub is not None:
        commands.append(f"atlas query feature_edges -p {shlex.quote('uid=' + hub['uid'])} -p {run} -p limit=10")
    commands.append(f"atlas query features_by_term -p {shlex.quote(f'term={term}')}" if term else
                    "atlas query features_by_gene -p gene=CD3D")
    if len(commands) < 3:
        commands.append("atlas query features_by_gene -p gene=CD3D")
    reports = result.report.parent.parent
    port_option = f" --port {port}" if port != DEFAULT_PORT else ""
    explorer = {"command": f"atlas serve{port_option} --reports {shlex.quote(str(reports))}",
                "url": explorer_url(port=port)}
    return {"report": str(result.report), "browser": browser, "explorer": explorer, "bolt": bolt,
            "password_file": password_file,
            "run_id": result.run_id, "model": str(result.model_dir), "saes": str(result.sae_dir),
            "model_trained": result.model_trained, "saes_trained": result.saes_trained, "try": commands,
            "top_hub": hub}
