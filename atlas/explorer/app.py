"""The explorer's web application: server-rendered pages and their JSON twins under ``/api/`` (FastAPI).

Read-only by construction: every route is a GET that calls :mod:`atlas.analysis.browse`, whose statements are the
parameterised files of ``queries/`` run in read transactions behind the shard visibility fence. The database
credentials stay in this process; the browser only ever receives documents.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from neo4j.exceptions import DriverError, Neo4jError
from starlette.exceptions import HTTPException

from atlas import __version__
from atlas.analysis import browse
from atlas.analysis.scope import Q_COLUMNS
from atlas.db.connection import ConnectionSettings, Graph, connect
from atlas.errors import AtlasError
from atlas.explorer import models
from atlas.plain import plain

HERE = Path(__file__).parent
FRONTEND = HERE / "frontend"
VENDOR = FRONTEND / "node_modules" / "cytoscape" / "dist"
ASSETS_HINT = ("the graph view needs its JavaScript library: run `npm ci --prefix atlas/explorer/frontend` "
               "(make demo and make test do it)")
PAGE_SIZE = 25
Q_COLUMN = "^(" + "|".join(Q_COLUMNS) + ")$"
# A request waits this long for a server that went away before answering 503 (the driver's default is 30 s).
RETRY_SECONDS = 3.0
CONNECT_SECONDS = 5.0
ERRORS = {status: {"model": models.ErrorOut} for status in (404, 422, 503)}


def assets_missing() -> str | None:
    """One line saying how to install the graph view's JavaScript, or None when it is installed."""
    return None if (VENDOR / "cytoscape.min.js").is_file() else ASSETS_HINT


class GraphSource:
    """The connection, opened on first use and dropped after a connection failure, so that a server that went away
    and came back is reached again by the next request."""

    def __init__(self, settings: ConnectionSettings | None = None):
        self._settings = settings
        self._graph: Graph | None = None
        self._lock = threading.Lock()

    def get(self) -> Graph:
        """The open connection (connecting now when there is none)."""
        with self._lock:
            if self._graph is None:
                self._graph = connect(self._settings or ConnectionSettings.from_env(),
                                      max_transaction_retry_time=RETRY_SECONDS, connection_timeout=CONNECT_SECONDS)
            return self._graph

    def reset(self) -> None:
        """Close and forget the connection."""
        with self._lock:
            graph, self._graph = self._graph, None
        if graph is not None:
            graph.close()


class StrictJSONResponse(JSONResponse):
    """JSON without NaN or Infinity (null instead), as every strict parser expects."""

    def render(self, content: Any) -> bytes:
        return json.dumps(plain(content), allow_nan=False, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")


def _one_line(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("query", "path"))
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def create_app(settings: ConnectionSettings | None = None, reports: Path | None = None) -> FastAPI:
    """The explorer over the atlas ``settings`` reaches (the environment's when None); ``reports`` is a directory of
    ``<run>/report.html`` reports (from `atlas report`) to link from the run pages."""
    app = FastAPI(title="Circuit Atlas explorer", version=__version__, default_response_class=StrictJSONResponse,
                  description="Read-only JSON API over a circuit atlas: runs, hubs, feature documents, edges, "
                              "neighbourhoods, genes, terms and search. Every page of the explorer has its twin "
                              "here. Errors are `{\"error\": \"one line\"}` with status 404, 422 or 503.")
    source = GraphSource(settings)
    app.state.source = source
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["path"] = lambda value: quote(str(value), safe="/:")
    templates.env.filters["num"] = lambda value, digits=3: "" if value is None else f"{value:.{digits}g}"
    templates.env.globals["assets_missing"] = assets_missing
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    if VENDOR.is_dir():
        app.mount("/vendor", StaticFiles(directory=VENDOR), name="vendor")
    if reports is not None:
        app.mount("/reports", StaticFiles(directory=reports, html=True), name="reports")

    def failure(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
            return StrictJSONResponse({"error": message}, status_code=status)
        return templates.TemplateResponse(request, "error.html", {"status": status, "message": message},
                                          status_code=status)

    @app.exception_handler(browse.NotFound)
    def not_found(request: Request, error: browse.NotFound) -> Response:
        return failure(request, 404, str(error))

    @app.exception_handler(browse.InvalidParameter)
    def invalid(request: Request, error: browse.InvalidParameter) -> Response:
        return failure(request, 422, str(error))

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, error: RequestValidationError) -> Response:
        return failure(request, 422, _one_line(error))

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException) -> Response:
        return failure(request, error.status_code, str(error.detail))

    @app.exception_handler(AtlasError)
    def unavailable(request: Request, error: AtlasError) -> Response:
        source.reset()  # the connection layer's one-line errors: server down, credentials refused
        return failure(request, 503, str(error))

    @app.exception_handler(Neo4jError)
    @app.exception_handler(DriverError)
    def database_error(request: Request, error: Exception) -> Response:
        source.reset()
        return failure(request, 503, f"the atlas database failed: {str(error).strip().splitlines()[0]}")

    def graph() -> Graph:
        return source.get()

    # ---- JSON API ----------------------------------------------------------------------------------------------

    @app.get("/api/runs", response_model=list[models.RunOut], responses=ERRORS, tags=["runs"])
    def api_runs() -> Any:
        """Every run in the atlas."""
        return browse.runs_overview(graph())

    @app.get("/api/runs/{run:path}/hubs", response_model=list[models.HubOut], responses=ERRORS, tags=["runs"])
    def api_hubs(run: str, top: Annotated[int, Query(ge=1, le=browse.MAX_PAGE)] = 20,
                 unannotated: bool = False) -> Any:
        """The run's features by hub rank; `unannotated=true` keeps only those without any annotation."""
        return browse.run_hubs(graph(), run, top, unannotated)

    @app.get("/api/runs/{run:path}", response_model=models.RunDocument, responses=ERRORS, tags=["runs"])
    def api_run(run: str) -> Any:
        """A run at a glance: degree summary and histogram, top hubs, edges per downstream layer."""
        return browse.run_document(graph(), run)

    @app.get("/api/features/{uid:path}/edges", response_model=models.EdgePage, responses=ERRORS, tags=["features"])
    def api_edges(uid: str, direction: Annotated[str, Query(pattern="^(out|in)$")] = "out", run: str | None = None,
                  layer: int | None = None, sign: Annotated[str | None, Query(pattern="^(excitatory|inhibitory)$")]
                  = None, min_abs_d: Annotated[float | None, Query(ge=0)] = None,
                  max_q: Annotated[float | None, Query(ge=0)] = None,
                  q_column: Annotated[str, Query(pattern=Q_COLUMN)] = "q",
                  sort: Annotated[str, Query(pattern="^(" + "|".join(browse.EDGE_SORTS) + ")$")] = "abs_d",
                  order: Annotated[str, Query(pattern="^(desc|asc)$")] = "desc",
                  limit: Annotated[int, Query(ge=1, le=browse.MAX_PAGE)] = 50,
                  offset: Annotated[int, Query(ge=0)] = 0) -> Any:
        """One page of a feature's downstream (`direction=out`) or upstream (`in`) edges, filtered and sorted;
        `max_q` bounds the `q_column` (q, or perm_q of a calibrated run)."""
        edge_filter = browse.EdgeFilter(direction, run, layer, sign, min_abs_d, max_q, q_column, sort,
                                        order == "desc", limit, offset)
        return browse.feature_edges(graph(), uid, edge_filter)

    @app.get("/api/features/{uid:path}/neighbourhood", response_model=models.Neighbourhood, responses=ERRORS,
             tags=["features"])
    def api_neighbourhood(uid: str, run: str | None = None,
                          hops: Annotated[int, Query(ge=1, le=browse.MAX_HOPS)] = 2,
                          limit: Annotated[int, Query(ge=1, le=browse.MAX_NEIGHBOURHOOD)]
                          = browse.DEFAULT_NEIGHBOURHOOD) -> Any:
        """The k-hop neighbourhood of a feature (both directions), pruned to its `limit` strongest edges.

        A hop-1 edge is as strong as its |d|; a hop-2 edge as the weaker of its |d| and the |d| of the strongest hop-1
        edge reaching it (ties: hop 1 first, then by element id). The graph is connected to the feature and holds
        `limit` edges whenever the neighbourhood has that many."""
        return browse.neighbourhood(graph(), uid, run, hops, limit)

    @app.get("/api/features/{uid:path}", response_model=models.FeatureDocument, responses=ERRORS, tags=["features"])
    def api_feature(uid: str) -> Any:
        """The feature document: terms, top genes, per-run degrees and hub rank, interactions, steering."""
        return browse.feature_document(graph(), uid)

    @app.get("/api/genes/{gene_id:path}", response_model=models.GeneDocument, responses=ERRORS, tags=["search"])
    def api_gene(gene_id: str) -> Any:
        """A gene (Ensembl id or symbol) and the features whose top genes include it."""
        return browse.gene_document(graph(), gene_id)

    @app.get("/api/terms/{term_id:path}", response_model=models.TermDocument, responses=ERRORS, tags=["search"])
    def api_term(term_id: str) -> Any:
        """A term (exact id) and the features enriched in it."""
        return browse.term_document(graph(), term_id)

    @app.get("/api/search", response_model=models.SearchResult, responses=ERRORS, tags=["search"])
    def api_search(q: Annotated[str, Query(min_length=1, max_length=200)],
                   limit: Annotated[int, Query(ge=1, le=browse.MAX_PAGE)] = browse.SEARCH_LIMIT) -> Any:
        """Features by uid or label, genes by symbol or id, terms by id or name (case-insensitive parts)."""
        return browse.search(graph(), q, limit)

    # ---- pages -------------------------------------------------------------------------------------------------

    def page(request: Request, template: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, template, context)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> Response:
        return page(request, "index.html", runs=browse.runs_overview(graph()))

    @app.get("/runs/{run:path}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(request: Request, run: str) -> Response:
        report = reports is not None and (reports / run / "report.html").is_file()
        return page(request, "run.html", doc=browse.run_document(graph(), run), report=report)

    @app.get("/features/{uid:path}/neighbourhood", response_class=HTMLResponse, include_in_schema=False)
    def neighbourhood_page(request: Request, uid: str, run: str | None = None,
                           hops: Annotated[int, Query(ge=1, le=browse.MAX_HOPS)] = 2,
                           limit: Annotated[int, Query(ge=1, le=browse.MAX_NEIGHBOURHOOD)]
                           = browse.DEFAULT_NEIGHBOURHOOD) -> Response:
        return page(request, "neighbourhood.html", graph=browse.neighbourhood(graph(), uid, run, hops, limit))

    @app.get("/features/{uid:path}", response_class=HTMLResponse, include_in_schema=False)
    def feature_page(request: Request, uid: str, run: str | None = None, layer: int | None = None,
                     sign: Annotated[str | None, Query(pattern="^(excitatory|inhibitory)$")] = None,
                     min_abs_d: Annotated[float | None, Query(ge=0)] = None,
                     max_q: Annotated[float | None, Query(ge=0)] = None,
                     q_column: Annotated[str, Query(pattern=Q_COLUMN)] = "q",
                     sort: Annotated[str, Query(pattern="^(" + "|".join(browse.EDGE_SORTS) + ")$")] = "abs_d",
                     order: Annotated[str, Query(pattern="^(desc|asc)$")] = "desc",
                     out_offset: Annotated[int, Query(ge=0)] = 0, in_offset: Annotated[int, Query(ge=0)] = 0
                     ) -> Response:
        connection = graph()
        document = browse.feature_document(connection, uid)
        tables = {}
        for direction, offset in (("out", out_offset), ("in", in_offset)):
            edge_filter = browse.EdgeFilter(direction, run, layer, sign, min_abs_d, max_q, q_column, sort,
                                            order == "desc", PAGE_SIZE, offset)
            tables[direction] = browse.feature_edges(connection, uid, edge_filter)
        filters = {"run": run, "layer": layer, "sign": sign, "min_abs_d": min_abs_d, "max_q": max_q,
                   "q_column": q_column, "sort": sort, "order": order}
        runs = browse.runs_overview(connection)
        # Permutation q exists only for calibrated runs: its column and filter would be empty for the others.
        calibrated = any(row["calibrated"] for row in runs if run is None or row["id"] == run)
        sorts = [column for column in browse.EDGE_SORTS if calibrated or column != "perm_q"]
        return page(request, "feature.html", doc=document, tables=tables, filters=filters,
                    runs=[row["id"] for row in runs], sorts=sorts, calibrated=calibrated)

    @app.get("/genes/{gene_id:path}", response_class=HTMLResponse, include_in_schema=False)
    def gene_page(request: Request, gene_id: str) -> Response:
        return page(request, "gene.html", doc=browse.gene_document(graph(), gene_id))

    @app.get("/terms/{term_id:path}", response_class=HTMLResponse, include_in_schema=False)
    def term_page(request: Request, term_id: str) -> Response:
        return page(request, "term.html", doc=browse.term_document(graph(), term_id))

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, q: Annotated[str, Query(max_length=200)] = "") -> Response:
        found = browse.search(graph(), q) if q.strip() else None
        return page(request, "search.html", q=q, found=found)

    return app
