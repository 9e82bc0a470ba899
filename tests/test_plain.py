"""The one conversion to plain values (atlas.plain): what every --json and export prints is strict JSON."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from atlas.plain import dumps, plain, records


def test_nan_and_infinity_become_null_at_any_depth():
    data = {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": {"d": np.float32("nan")}}
    assert plain(data) == {"a": None, "b": [1.0, None, None], "c": {"d": None}}


def test_numpy_and_pandas_values_become_python_values():
    assert plain({"n": np.int64(3), "x": np.float32(0.5), "v": np.array([1, 2]), "flag": np.bool_(True),
                  "missing": pd.NA}) == {"n": 3, "x": 0.5, "v": [1, 2], "flag": True, "missing": None}


def test_unknown_values_become_their_string():
    assert plain({"path": Path("/tmp/run"), "when": pd.Timestamp("2026-01-02")}) == {
        "path": "/tmp/run", "when": "2026-01-02 00:00:00"}


def test_table_records_are_plain_rows():
    table = pd.DataFrame({"uid": ["a", "b"], "pagerank": [0.1, np.nan], "genes": [np.array(["X"]), np.array([])]})
    assert records(table) == [{"uid": "a", "pagerank": 0.1, "genes": ["X"]},
                              {"uid": "b", "pagerank": None, "genes": []}]


def test_dumps_is_strict_json():
    text = dumps({"d": [np.nan, np.inf, 2.0]})
    assert json.loads(text, parse_constant=lambda constant: (_ for _ in ()).throw(ValueError(constant))) == {
        "d": [None, None, 2.0]}
