"""The Cypher library: one named, parameterised query per ``.cypher`` file, and the code that finds them.

``queries/library/*.cypher`` are the analysts' queries (``atlas query --list``); ``queries/internal/*.cypher`` are
the statements the loaders and analyses run. Every file starts with a header of ``//`` comment lines::

    // purpose: Features of a run ranked by out-degree.
    // param run: str — the run id
    // param limit: int = 20 — how many rows
    // returns: uid, label, degree

User values only ever reach Cypher as parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from atlas.errors import AtlasError

ROOT = Path(__file__).parent
_PARAM = re.compile(r"^param\s+(\w+)\s*:\s*([\w\[\]]+)\s*(?:=\s*(\S+))?\s*(?:[—-]+\s*(.*))?$")
_TYPES = {"str": str, "int": int, "float": float, "bool": lambda text: text.lower() in ("1", "true", "yes")}


@dataclass(frozen=True)
class Parameter:
    """One declared query parameter."""

    name: str
    type: str
    default: Any = None
    doc: str = ""
    required: bool = True

    def parse(self, text: str) -> Any:
        """Convert a command-line string to this parameter's type (``str[]``: comma-separated)."""
        base = self.type.removesuffix("[]")
        convert = _TYPES.get(base)
        if convert is None:
            raise AtlasError(f"parameter {self.name} has unknown type {self.type}")
        try:
            if self.type.endswith("[]"):
                return [convert(item.strip()) for item in text.split(",") if item.strip()]
            return convert(text)
        except ValueError as error:
            raise AtlasError(f"parameter {self.name} expects {self.type}, got {text!r}") from error


@dataclass(frozen=True)
class NamedQuery:
    """A parsed ``.cypher`` file."""

    name: str
    text: str
    purpose: str
    returns: str
    parameters: dict[str, Parameter] = field(default_factory=dict)

    def bind(self, raw: dict[str, str]) -> dict[str, Any]:
        """Typed parameters from ``name -> text`` pairs, with defaults; unknown or missing names are errors."""
        unknown = sorted(set(raw) - set(self.parameters))
        if unknown:
            raise AtlasError(f"query {self.name} has no parameter {', '.join(unknown)} "
                             f"(it takes: {', '.join(self.parameters) or 'none'})")
        bound = {}
        for name, parameter in self.parameters.items():
            if name in raw:
                bound[name] = parameter.parse(raw[name])
            elif parameter.required:
                raise AtlasError(f"query {self.name} needs -p {name}=<{parameter.type}> ({parameter.doc})")
            else:
                bound[name] = parameter.default
        return bound


def parse(name: str, source: str) -> NamedQuery:
    """Parse a query file's header and body."""
    header, body, purpose, returns, parameters = True, [], "", "", {}
    for line in source.splitlines():
        stripped = line.strip()
        if header and stripped.startswith("//"):
            content = stripped.lstrip("/").strip()
            if content.startswith("purpose:"):
                purpose = content.removeprefix("purpose:").strip()
            elif content.startswith("returns:"):
                returns = content.removeprefix("returns:").strip()
            elif match := _PARAM.match(content):
                pname, ptype, default, doc = match.groups()
                parameter = Parameter(pname, ptype, None, doc or "", default is None)
                if default is not None:
                    parameter = Parameter(pname, ptype, None if default == "null" else parameter.parse(default),
                                          doc or "", False)
                parameters[pname] = parameter
            continue
        header = header and not stripped
        body.append(line)
    if not purpose:
        raise AtlasError(f"query {name} has no '// purpose:' header")
    return NamedQuery(name, "\n".join(body).strip(), purpose, returns, parameters)


@cache
def _load_dir(directory: str) -> dict[str, NamedQuery]:
    folder = ROOT / directory
    return {path.stem: parse(path.stem, path.read_text()) for path in sorted(folder.glob("*.cypher"))}


def library() -> dict[str, NamedQuery]:
    """The analysts' named queries, by name."""
    return _load_dir("library")


def internal(name: str) -> NamedQuery:
    """One of the statements the loaders and analyses run."""
    queries = _load_dir("internal")
    if name not in queries:
        raise KeyError(f"no internal query {name}")
    return queries[name]


def get(name: str) -> NamedQuery:
    """A library query by name, with a helpful error listing the names when it does not exist."""
    queries = library()
    if name not in queries:
        raise AtlasError(f"no query named {name!r}; known: {', '.join(queries) or 'none'} (atlas query --list)")
    return queries[name]
