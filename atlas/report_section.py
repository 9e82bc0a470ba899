"""What a report section builder receives and returns: the shared :class:`ReportContext` and a :class:`Section`.

Builders live beside what they report (:mod:`atlas.report` for the analyses, :mod:`atlas.experiment_sections` for
the experiments); :mod:`atlas.report` lists them and lays the sections out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from atlas.analysis.hubs import DEFAULT_RULE, HubReport, HubRule, hub_report
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph


@dataclass
class Section:
    """One part of the report: text, tables, figures and the command that reproduces it."""

    key: str
    title: str
    command: str
    text: str = ""
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Figure]] = field(default_factory=list)


@dataclass
class ReportContext:
    """What section builders share: the connection, the scope, the hub rule and results computed once."""

    graph: Graph
    scope: Scope
    rule: HubRule = DEFAULT_RULE
    top: int = 20
    cache: dict[str, Any] = field(default_factory=dict)

    def hubs(self) -> HubReport:
        """Degrees, hubs and unannotated hubs from one projection (computed on first use)."""
        if "hubs" not in self.cache:
            self.cache["hubs"] = hub_report(self.graph, self.scope, self.rule, self.top, write=False)
        return self.cache["hubs"]


SectionBuilder = Callable[[ReportContext], Section | None]
