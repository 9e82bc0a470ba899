"""`atlas serve`: the read-only explorer (pages and JSON API) over the atlas the other commands reach."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from atlas.errors import AtlasError
from atlas.explorer import DEFAULT_HOST, DEFAULT_PORT, explorer_url


def _check_free(host: str, port: int) -> None:
    """Refuse in one line when the address is taken (uvicorn would log a multi-line error instead)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise AtlasError(f"cannot listen on {host}:{port} ({error.strerror}); choose another --port or "
                             "--host") from error


@contextmanager
def _stopping_is_success() -> Iterator[None]:
    """Let Ctrl-C and SIGTERM end the explorer with exit code 0: uvicorn shuts down gracefully on either, then
    raises the signal again for the handlers it found, which here do nothing (not KeyboardInterrupt, not death by
    SIGTERM)."""
    previous = {number: signal.signal(number, lambda *_: None) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_explorer(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, reports: Path | None = None) -> None:
    """Check the database answers, then serve the explorer until Ctrl-C or SIGTERM (a normal end: exit code 0)."""
    import uvicorn

    from atlas.db.connection import connect
    from atlas.explorer.app import assets_missing, create_app

    connect().close()  # a server that is down or refuses the credentials is one line now, not a 503 later
    _check_free(host, port)
    missing = assets_missing()
    if missing:
        click.echo(f"note: {missing}", err=True)
    url = explorer_url(host, port)
    click.echo(f"Circuit Atlas explorer at {url} (API docs {url}docs); Ctrl-C stops it")
    with _stopping_is_success():
        uvicorn.run(create_app(reports=reports), host=host, port=port, log_level="warning")


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Interface to bind; 0.0.0.0 exposes the explorer to the network (it has no login).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--reports", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Directory of `atlas report` outputs (<run>/report.html) to link from the run pages.")
def serve(host, port, reports):
    """Serve the atlas explorer: runs, feature pages, edges, neighbourhood graphs, genes, terms, search, and their
    JSON twins under /api/ (OpenAPI schema at /openapi.json, docs at /docs). Read-only; the database credentials
    stay in this process.

    \b
    Examples:
      atlas serve                               # http://127.0.0.1:8000/
      atlas serve --port 8080 --reports reports/
      NEO4J_URI=neo4j+s://x.databases.neo4j.io NEO4J_PASSWORD=... atlas serve
    """
    run_explorer(host, port, reports)
