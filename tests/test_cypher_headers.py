"""Every .cypher file's header is true: it has a purpose and a result, its parameters have known types, the body
uses exactly the declared parameters, and every call site in the code passes exactly those parameters."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import queries

ROOT = Path(__file__).resolve().parent.parent
CODE = ["atlas", "loaders", "queries", "benchmarks"]
KNOWN_TYPES = {"str", "int", "float", "bool", "map", "list"}
PARAMETER = re.compile(r"\$(\w+)")
CLAUSE = re.compile(r"\b(MATCH|MERGE|CREATE|RETURN|UNWIND|DELETE|CALL|SET|WHERE|YIELD)\b")
# Python files that may hold Cypher text, and why.
CYPHER_IN_PYTHON = {
    "atlas/db/connection.py": "the connection's version handshake: atlas.db sits below the queries package",
    "queries/readonly.py": "the read-only guard's procedure-mode lookup, part of the queries package",
    "loaders/schema.py": "constraint and index DDL generated from the schema declaration",
}
ALL = {**{f"library/{name}": named for name, named in queries.library().items()},
       **{f"internal/{path.stem}": queries.internal(path.stem)
          for path in sorted((ROOT / "queries" / "internal").glob("*.cypher"))}}


def _body_without_comments(text: str) -> str:
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def _query_name(node: ast.AST) -> str | None:
    """NAME of an expression ``queries.internal("NAME").text`` or ``_statement("NAME")`` (loaders.online)."""
    named = node.value if isinstance(node, ast.Attribute) and node.attr == "text" else node
    if isinstance(named, ast.Call) and ast.unparse(named.func) in ("queries.internal", "_statement") \
            and named.args and isinstance(named.args[0], ast.Constant):
        return named.args[0].value
    return None


def _call_sites() -> list[tuple[str, str, set[str] | None]]:
    """(query name, file:line, keyword names passed) of every call given ``queries.internal("NAME").text``, directly
    or through a variable of the same function; None where the call spreads ``**mapping``."""
    sites = []
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for scope in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(scope, ast.FunctionDef | ast.Module):
                    continue
                nodes = list(ast.walk(scope))
                variables = {node.targets[0].id: _query_name(node.value) for node in nodes
                             if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                             and _query_name(node.value)}
                for node in nodes:
                    if not isinstance(node, ast.Call):
                        continue
                    keywords = {keyword.arg for keyword in node.keywords}
                    if ast.unparse(node.func).endswith("projection.stream") and isinstance(node.args[0], ast.Constant):
                        # Projection.stream adds the projection's name as graph_name
                        sites.append((node.args[0].value, f"{path.relative_to(ROOT)}:{node.lineno}",
                                      None if None in keywords else keywords | {"graph_name"}))
                    for argument in node.args:
                        name = _query_name(argument) or (variables.get(argument.id)
                                                         if isinstance(argument, ast.Name) else None)
                        if name:
                            sites.append((name, f"{path.relative_to(ROOT)}:{node.lineno}",
                                          None if None in keywords else keywords))
    return sites


@pytest.mark.parametrize("name", sorted(ALL))
def test_the_header_declares_purpose_result_and_typed_documented_parameters(name):
    named = ALL[name]
    assert named.purpose and named.returns, f"{name}: needs // purpose: and // returns:"
    for parameter in named.parameters.values():
        assert parameter.type.removesuffix("[]") in KNOWN_TYPES, f"{name}: {parameter.name} has type {parameter.type}"
        assert parameter.doc, f"{name}: parameter {parameter.name} has no description"


@pytest.mark.parametrize("name", sorted(ALL))
def test_the_body_uses_exactly_the_declared_parameters(name):
    named = ALL[name]
    assert set(PARAMETER.findall(_body_without_comments(named.text))) == set(named.parameters)


def test_every_call_site_passes_exactly_the_declared_parameters():
    sites = _call_sites()
    assert len(sites) > 20  # the scan finds the loaders' and analyses' statements
    wrong = [f"{where}: {name} gets {sorted(passed)}, declares {sorted(queries.internal(name).parameters)}"
             for name, where, passed in sites
             if passed is not None and set(passed) - {"timeout"} != set(queries.internal(name).parameters)]
    assert wrong == []


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def test_cypher_text_lives_only_in_queries():
    found = []
    for folder in ("atlas", "loaders", "queries"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.relative_to(ROOT).as_posix() in CYPHER_IN_PYTHON:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = _docstrings(tree)
            found += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                      and CLAUSE.search(node.value) and re.search(r"[(\[{]|\$", node.value)]
    assert found == []
