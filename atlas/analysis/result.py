"""The one result shape every analysis returns: a summary mapping plus named tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from atlas.errors import AtlasError
from atlas.files import write_atomically
from atlas.plain import records


@dataclass
class AnalysisResult:
    """What an analysis found for a scope; ``tables[main]`` is the table `--out` writes and the CLI prints."""

    name: str
    scope: str
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    main: str
    command: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def table(self) -> pd.DataFrame:
        """The main table."""
        return self.tables[self.main]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: summary, notes and every table as a list of records."""
        return {"analysis": self.name, "scope": self.scope, "summary": self.summary, "notes": self.notes,
                "tables": {name: records(table) for name, table in self.tables.items()}}


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write a table as Parquet (``.parquet``) or CSV (``.csv``), atomically; list columns are joined for CSV."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        write_atomically(path, lambda out: table.to_parquet(out, index=False))
    elif suffix == ".csv":
        flat = table.copy()
        for column in flat.columns:
            if flat[column].map(lambda value: isinstance(value, (list, tuple))).any():
                flat[column] = flat[column].map(lambda value: ";".join(map(str, value))
                                                if isinstance(value, (list, tuple)) else value)
        write_atomically(path, flat.to_csv(index=False).encode("utf-8"))
    else:
        raise AtlasError(f"{path}: --out must end in .parquet or .csv")
