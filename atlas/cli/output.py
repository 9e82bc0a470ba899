"""Formatting of command results: tables for people, JSON for programs. Computation never happens here."""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import click
from tqdm import tqdm

from atlas.errors import AtlasError
from atlas.plain import dumps, plain


def emit_json(data: Any) -> None:
    """Print data as strict JSON (:func:`atlas.plain.plain`: numpy values and paths converted, NaN as null)."""
    click.echo(dumps(data))


def format_value(value: Any) -> str:
    """One table cell: numbers to 4 significant digits, lists joined, missing values empty."""
    value = plain(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return "" if value is None else str(value)


def emit_table(
    rows: Sequence[Mapping[str, Any]], title: str | None = None, columns: Sequence[str] | None = None
) -> None:
    """Print rows as an aligned table with a header; an empty result prints a short note."""
    if title:
        click.secho(title, bold=True)
    if not rows:
        click.echo("(no rows)")
        return
    columns = list(columns or rows[0].keys())
    cells = [[format_value(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    click.echo("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    click.echo("  ".join("-" * width for width in widths))
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def emit_mapping(data: Mapping[str, Any], title: str | None = None) -> None:
    """Print key: value lines."""
    if title:
        click.secho(title, bold=True)
    width = max((len(key) for key in data), default=0)
    for key, value in data.items():
        click.echo(f"{key.ljust(width)}  {format_value(value)}")


PROGRESS_MODES = ("auto", "always", "never")


def _draw_bars() -> bool:
    """``$ATLAS_PROGRESS``: ``auto`` (bars only when stderr is a terminal), ``always`` or ``never``."""
    mode = os.environ.get("ATLAS_PROGRESS", "auto")
    if mode not in PROGRESS_MODES:
        raise AtlasError(f"ATLAS_PROGRESS={mode!r}: use one of {', '.join(PROGRESS_MODES)}")
    return mode == "always" or (mode == "auto" and sys.stderr.isatty())


def progress_bar(enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar on stderr when asked for and :func:`_draw_bars` agrees (a log file gets no bar lines)."""
    return tqdm(disable=not enabled or not _draw_bars(), **options)


_STAGE_BARS: weakref.WeakSet[StageBars] = weakref.WeakSet()


def close_bars() -> None:
    """Close the bars of every live :class:`StageBars` (called before an error line is printed)."""
    for bars in list(_STAGE_BARS):
        bars.close()


class StageBars:
    """One bar per stage for library callbacks ``progress(stage, done, total)``; see :func:`progress_bar`."""

    def __init__(self, enabled: bool = True, unit: str = "step") -> None:
        self.enabled = enabled
        self.unit = unit
        self.bars: dict[str, tqdm] = {}
        _STAGE_BARS.add(self)

    def close(self) -> None:
        """Close every bar still drawn (a failed command's error line must not share a line with a bar)."""
        for bar in self.bars.values():
            bar.close()

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = progress_bar(self.enabled, total=total, desc=stage, unit=self.unit,
                                                  unit_scale=True, leave=False)
        bar.total = total
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()
