"""One report per scope: a self-contained HTML file (figures embedded as PNG) and the same content as Markdown.

A report is a list of sections. Each section is built by a *section builder* from a shared
:class:`ReportContext` (the graph, the scope, and the analyses already computed, so the hub report's projection is
shared), and lists the command that reproduces it. Building never draws HTML and rendering never queries: builders
return tables and figures, the renderers only lay them out.

The sections are :data:`SECTIONS` (the analyses', then the experiments' from :mod:`atlas.experiment_sections`);
``build_report(builders=...)`` takes any other list. A builder (:mod:`atlas.report_section`) returns ``None`` when
its data is not in the graph for this scope, and the section is left out.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from matplotlib.figure import Figure

from atlas import plots
from atlas.analysis.attenuation import attenuation
from atlas.analysis.bias import bias
from atlas.analysis.calibration import calibration
from atlas.analysis.heavy_tail import tail_from_values
from atlas.analysis.hubs import DEFAULT_RULE, DEFAULT_THRESHOLD, HubRule
from atlas.analysis.modules import modules
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph
from atlas.errors import AtlasError
from atlas.experiment_sections import ablation_section, steering_section
from atlas.files import write_atomically
from atlas.report_section import ReportContext, Section, SectionBuilder


def _section(result: AnalysisResult, key: str, title: str, text: str, tables: list[tuple[str, str]],
             figure: bool = True) -> Section:
    return Section(key, title, result.command, text,
                   [(caption, result.tables[name]) for caption, name in tables],
                   [(title, plots.draw(result))] if figure else [])


def summary_section(context: ReportContext) -> Section:
    """Headline numbers of the scope."""
    report = context.hubs()
    degrees = report.degrees.tables["summary"].set_index(["direction", "layer"])
    out = degrees.loc[("out", "all")]
    numbers = pd.DataFrame([
        ("runs", ", ".join(context.scope.runs)),
        ("downstream layers", ", ".join(map(str, report.degrees.summary["downstream_layers"]))),
        ("edges", f"{report.degrees.summary['edges']:,}"),
        ("source features with edges", f"{report.degrees.summary['features_with_out_edges']:,}"),
        ("edges per source feature: mean / median / max", f"{out['mean']:.1f} / {out['median']:.0f} / "
                                                          f"{out['max']:.0f}"),
        ("hub rule", report.hubs.summary["rule"]),
        ("hubs", f"{report.hubs.summary['hubs']:,} ({report.hubs.summary['hub_fraction']:.1%} of the "
                 f"{report.hubs.summary['ranked_features']:,} features with {context.rule.by} > 0)"),
        ("unannotated hubs", f"{report.unannotated_hubs.summary['unannotated_hubs']:,}"),
    ], columns=["measure", "value"])
    return Section("summary", "Summary", f"atlas analyze degrees {context.scope.command_flags()}",
                   tables=[("Scope at a glance", numbers)])


def degrees_section(context: ReportContext) -> Section:
    """Degree distributions with histogram and CCDF."""
    return _section(context.hubs().degrees, "degrees", "Degree distributions",
                    "Out-degree over source features with edges, in-degree over features with in-edges; "
                    "per downstream layer too.", [("Degree summary", "summary")])


def hubs_section(context: ReportContext) -> Section:
    """Top hubs by the chosen measure with PageRank and betweenness."""
    result = context.hubs().hubs
    return _section(result, "hubs", "Hubs", f"Rule: {result.summary['rule']}; betweenness "
                    f"{result.summary['betweenness']}.", [("Hubs and top-ranked features", "hubs")])


def unannotated_section(context: ReportContext) -> Section:
    """Hubs without annotation and their top genes."""
    result = context.hubs().unannotated_hubs
    return _section(result, "unannotated-hubs", "Unannotated hubs",
                    "Hubs with no enrichment term: the first candidates for annotation.",
                    [("Unannotated hubs with their top genes", "unannotated_hubs")], figure=len(result.table) > 0)


def attenuation_section(context: ReportContext) -> Section:
    """Edges per downstream layer."""
    result = attenuation(context.graph, context.scope)
    return _section(result, "attenuation", "Attenuation by depth", "Edges per downstream layer and the decay "
                    "from the nearest to the farthest layer.", [("Edges per layer", "layers"),
                                                                 ("Decay per run", "decay")])


def tail_section(context: ReportContext) -> Section | None:
    """CSN power-law fit of the out-degree with model comparisons."""
    features = context.hubs().features
    try:
        result = tail_from_values(features["out_degree"].to_numpy(), context.scope, "out")
    except AtlasError:
        return None
    summary = result.summary
    return _section(result, "powerlaw", "Tail fit", f"Power law α = {summary['alpha']:.2f} "
                    f"(± {summary['alpha_standard_error']:.2f}) from xmin = {summary['xmin']:g} "
                    f"({summary['tail_points']} tail points). Positive log-likelihood ratios favour the power law.",
                    [("Likelihood-ratio comparisons", "comparisons")])


def bias_section(context: ReportContext) -> Section | None:
    """Annotation bias of hubs, raw and frequency-adjusted."""
    try:
        result = bias(context.graph, context.scope, top=context.top)
    except AtlasError:
        return None
    return _section(result, "bias", "Annotation bias of hubs",
                    f"{result.summary['top_annotated_rate']:.0%} of the top {context.top} hubs are annotated "
                    f"against {result.summary['annotated_rate']:.0%} of all traced features.",
                    [("Tests", "tests")])


def modules_section(context: ReportContext) -> Section:
    """Leiden modules of the |d|-weighted undirected graph with their layers, hubs and enriched terms."""
    result = modules(context.graph, context.scope,
                     hub_threshold=DEFAULT_THRESHOLD if context.rule.threshold is None else context.rule.threshold)
    summary = result.summary
    return _section(result, "modules", "Circuit modules",
                    f"Leiden finds {summary['modules']} modules among {summary['features']} features "
                    f"(largest {summary['largest_module']}); {summary['modules_with_enriched_terms']} have "
                    "annotation terms enriched among their members (Fisher, BH q <= 0.05).",
                    [("Modules", "modules"), ("Enriched terms", "enrichment")])



def calibration_section(context: ReportContext) -> Section | None:
    """The permutation null of calibrated runs: null vs observed edges per threshold, FDR per degree decile."""
    try:
        result = calibration(context.graph, context.scope)
    except AtlasError:
        return None
    runs = result.tables["runs"]
    text = "; ".join(
        f"{row.run}: {row.expected_null_edges_subset:,.1f} edges expected under the sign-flip null against "
        f"{row.observed_edges_subset:,} observed over {row.n_features} calibrated features ({row.n_perm} "
        f"permutations), empirical FDR "
        f"{'n/a (no edges)' if pd.isna(row.empirical_fdr_subset) else f'{row.empirical_fdr_subset:.1%}'}"
        for row in runs.itertuples())
    return _section(result, "calibration", "Calibration", text + ". Edges carry perm_p and perm_q (BH over the "
                    "live targets); filter with --max-q 0.05 --q-column perm_q.",
                    [("Headline per run", "runs"), ("Observed vs expected null edges per threshold", "sweep"),
                     ("Surviving fraction and FDR per degree decile", "deciles")])


CORE_SECTIONS: list[SectionBuilder] = [summary_section, degrees_section, hubs_section, unannotated_section,
                                       attenuation_section, tail_section, bias_section, modules_section,
                                       calibration_section]

SECTIONS: list[SectionBuilder] = [*CORE_SECTIONS, ablation_section, steering_section]


@dataclass
class Report:
    """The built sections of a scope's report."""

    scope: Scope
    created_at: str
    sections: list[Section]
    flags: str = ""

    @property
    def command(self) -> str:
        """The command that writes this report again."""
        return f"atlas report {self.scope.command_flags()} {self.flags} --out DIR".replace("  ", " ")


def build_report(graph: Graph, scope: Scope, rule: HubRule = DEFAULT_RULE, top: int = 20,
                 builders: Sequence[SectionBuilder] = SECTIONS,
                 progress: Callable[[int, int], None] | None = None) -> Report:
    """Run the section builders for the scope; ``progress(done, total)`` is called after each one."""
    context = ReportContext(graph, scope, rule, top)
    sections = []
    for done, builder in enumerate(builders, start=1):
        section = builder(context)
        if section is not None:
            sections.append(section)
        if progress is not None:
            progress(done, len(builders))
    return Report(scope, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), sections, f"{rule.flags()} --top {top}")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)


FEATURE_UID = re.compile(r"^[^/\s]+/[^/\s]+/L\d+/F\d+$")


def feature_link(value: Any, explorer_url: str | None) -> str | None:
    """The explorer page of a feature uid (``model/sae/LNN/FNNNN``), or None for anything else or no explorer."""
    if not explorer_url or not isinstance(value, str) or not FEATURE_UID.match(value):
        return None
    return f"{explorer_url.rstrip('/')}/features/{quote(value, safe='/')}"


def _linked_cell(value: Any, explorer_url: str | None, markdown: bool) -> str:
    """A cell with every feature uid in it linked to its explorer page (escaped for HTML or Markdown)."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not any(feature_link(item, explorer_url) for item in items):
        text = _cell(value)
        return text.replace("|", "\\|") if markdown else html.escape(text)
    parts = []
    for item in items:
        link = feature_link(item, explorer_url)
        if markdown:
            parts.append(f"[{item}]({link})" if link else _cell(item).replace("|", "\\|"))
        else:
            parts.append(f"<a href='{html.escape(link)}'>{html.escape(item)}</a>" if link
                         else html.escape(_cell(item)))
    return ", ".join(parts)


def markdown_table(table: pd.DataFrame, limit: int = 50, explorer_url: str | None = None) -> str:
    """A GitHub-flavoured Markdown table of the first ``limit`` rows (feature uids linked to the explorer)."""
    rows = table.head(limit)
    lines = ["| " + " | ".join(map(str, rows.columns)) + " |", "|" + "---|" * len(rows.columns)]
    lines += ["| " + " | ".join(_linked_cell(value, explorer_url, markdown=True) for value in row) + " |"
              for row in rows.itertuples(index=False)]
    if len(table) > limit:
        lines.append(f"\n*first {limit} of {len(table)} rows*")
    return "\n".join(lines)


def html_table(table: pd.DataFrame, limit: int = 50, explorer_url: str | None = None) -> str:
    """An HTML table of the first ``limit`` rows, every value escaped (feature uids linked to the explorer)."""
    rows = table.head(limit)
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in rows.columns)
    body = "".join("<tr>" + "".join(f"<td>{_linked_cell(value, explorer_url, markdown=False)}</td>"
                                    for value in row) + "</tr>"
                   for row in rows.itertuples(index=False))
    more = f"<p class='more'>first {limit} of {len(table)} rows</p>" if len(table) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f2f2f2}code{background:#f6f6f6;padding:2px 5px;display:block;white-space:pre-wrap}
img{max-width:100%}.more{color:#777;font-size:.8em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"""


def render_html(report: Report, figures: dict[tuple[str, int], bytes], explorer_url: str | None = None) -> str:
    """The report as one HTML document with the figures embedded as base64 PNG."""
    title = f"Circuit Atlas report: {report.scope.key}"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
             f"<p>Generated {report.created_at}. Reproduce the whole report with "
             f"<code>{html.escape(report.command)}</code></p>"]
    for section in report.sections:
        parts.append(f"<h2 id='{section.key}'>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        parts.append(f"<p>Reproduce:</p><code>{html.escape(section.command)}</code>")
        for caption, table in section.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>{html_table(table, explorer_url=explorer_url)}")
        for index, (caption, _) in enumerate(section.figures):
            encoded = base64.b64encode(figures[(section.key, index)]).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{encoded}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(report: Report, figure_files: dict[tuple[str, int], str], explorer_url: str | None = None
                    ) -> str:
    """The report as Markdown, figures referenced as PNG files next to it."""
    lines = [f"# Circuit Atlas report: {report.scope.key}", "",
             f"Generated {report.created_at}. Reproduce the whole report with "
             f"`{report.command}`.", ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text, ""]
        lines += ["Reproduce:", "", "```", section.command, "```", ""]
        for caption, table in section.tables:
            lines += [f"### {caption}", "", markdown_table(table, explorer_url=explorer_url), ""]
        for index, (caption, _) in enumerate(section.figures):
            lines += [f"![{caption}]({figure_files[(section.key, index)]})", ""]
    return "\n".join(lines)


def write_report(report: Report, out_dir: Path, explorer_url: str | None = None) -> dict[str, Path]:
    """Write ``report.html`` (self-contained), ``report.md`` and ``figures/*.png`` into ``out_dir``, each file
    atomically (a link planted at one of those names is replaced, not followed); with an ``explorer_url`` (where
    `atlas serve` runs) every feature uid in the tables links to its explorer page."""
    out_dir = Path(out_dir)
    figures_dir = out_dir / "figures"
    figures, files = {}, {}
    for section in report.sections:
        for index, (_, figure) in enumerate(section.figures):
            key = (section.key, index)
            figures[key] = _png(figure)
            name = f"{section.key}-{index + 1}.png"
            write_atomically(figures_dir / name, figures[key])
            files[key] = f"figures/{name}"
    paths = {"html": out_dir / "report.html", "markdown": out_dir / "report.md", "figures": figures_dir}
    write_atomically(paths["html"], render_html(report, figures, explorer_url).encode("utf-8"))
    write_atomically(paths["markdown"], render_markdown(report, files, explorer_url).encode("utf-8"))
    return paths
