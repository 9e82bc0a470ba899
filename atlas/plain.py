"""The one conversion to plain values: what every ``--json``, export and graph write receives.

Strict JSON: numpy and pandas scalars and arrays become Python numbers and lists, NaN and ±Infinity become
``None`` (JSON null), missing values (``pd.NA``, ``NaT``) too, and anything else unknown (paths, timestamps)
becomes its string.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd


def plain(value: Any) -> Any:
    """``value`` with every nested part converted to str, int, float, bool, None, list or dict (see module)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if hasattr(value, "tolist"):  # numpy scalars and arrays, pandas series
        return plain(value.tolist())
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a table as plain dicts (see :func:`plain`)."""
    return [plain(row) for row in table.to_dict(orient="records")]


def dumps(data: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text of ``data`` after :func:`plain` (never ``NaN`` or ``Infinity``)."""
    return json.dumps(plain(data), indent=indent, sort_keys=sort_keys, allow_nan=False)
