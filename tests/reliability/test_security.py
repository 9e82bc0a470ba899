"""Security: no hard-coded credentials, a localhost-only managed server, parameterised Cypher, weights-only
checkpoints and vocabulary files read without arbitrary unpickling (the read-only query path has its own corpus)."""

from __future__ import annotations

import ast
import os
import pickle
import re
import socket
from pathlib import Path

import pytest
import torch

from atlas.cells import load_dictionary
from atlas.db.server import ServerConfig
from atlas.errors import AtlasError
from atlas.sae.biosae import load_sae, write_sae
from atlas.sae.topk import TopKSAE

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["atlas", "loaders", "queries", "benchmarks"]
CONFIGS = ["docker", "Makefile", "pyproject.toml", ".ci", ".github"]
MARKER = Path(f"/tmp/atlas-security-pwned-{os.getpid()}")


class Payload:
    """Unpickling this would create MARKER."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _product_python() -> list[Path]:
    return sorted(path for folder in PRODUCT for path in (ROOT / folder).rglob("*.py"))


def _config_files() -> list[Path]:
    files = []
    for name in CONFIGS:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += sorted(child for child in path.rglob("*") if child.is_file())
    return files


# --- credentials -------------------------------------------------------------------------------------------------

SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|api_key)")  # "token" here means a gene token
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")  # the name of an environment variable, not a secret
SECRET_SETTING = re.compile(r"(?i)(password|passwd|secret)\w*[\"']?\s*[:=]\s*[\"']?([^\s\"'#]*)")
AUTH_SETTING = re.compile(r"NEO4J_AUTH[\"']?\s*[:=]\s*[\"']?([^\s\"'#]*)")


def literal_secrets(text: str) -> list[str]:
    """Settings in a config text whose secret is a literal rather than a ``$VARIABLE`` (comments are skipped)."""
    found = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        for match in SECRET_SETTING.finditer(re.sub(r"\$\{[^}]*\}", "$", line)):
            if match.group(2) and not match.group(2).startswith("$"):
                found.append(line.strip())
        for match in AUTH_SETTING.finditer(line):
            value = match.group(1)
            if value.lower() == "none" or not value.partition("/")[2].startswith("$"):
                found.append(line.strip())
    return found


def test_no_credentials_are_hard_coded_in_python():
    found = []
    for path in _product_python():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str) and node.value.value:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [target.id for target in targets if isinstance(target, ast.Name)]
                if any(SECRET_NAME.search(name) for name in names) and not ENV_NAME.match(node.value.value):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.keyword) and node.arg == "auth" and isinstance(node.value, ast.Tuple) \
                    and any(isinstance(item, ast.Constant) and item.value not in ("neo4j",)
                            for item in node.value.elts[1:]):
                found.append(f"{path.relative_to(ROOT)}:{node.value.lineno} auth tuple with a literal password")
    assert found == []


def test_no_credentials_are_hard_coded_in_configs_or_compose():
    files = _config_files()
    assert any(path.name.startswith("compose") for path in files)
    found = [f"{path.relative_to(ROOT)}: {line}" for path in files
             for line in literal_secrets(path.read_text(encoding="utf-8", errors="replace"))]
    assert found == []
    compose = (ROOT / "docker" / "compose.yml").read_text()
    assert "NEO4J_AUTH: \"neo4j/${NEO4J_PASSWORD:?" in compose  # no default: compose refuses to start without it


def test_the_managed_password_is_generated_and_private(neo4j_server):
    config = ServerConfig.from_env()
    if os.environ.get("NEO4J_URI") or os.environ.get("NEO4J_PASSWORD"):
        pytest.skip("not the managed server's generated password")
    password = config.password_file.read_text().strip()
    assert len(password) >= 24 and password.lower() not in ("neo4j", "password", "admin")
    assert config.password_file.stat().st_mode & 0o077 == 0


# --- network -----------------------------------------------------------------------------------------------------

def _listeners(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6)."""
    addresses = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if state == "0A" and int(local_port, 16) == port:
                raw = bytes.fromhex(address)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                addresses.add(socket.inet_ntop(family, words))
    return addresses


def test_the_managed_server_listens_on_localhost_only(neo4j_server, monkeypatch):
    if os.environ.get("NEO4J_URI"):
        pytest.skip("an external server")
    monkeypatch.delenv("ATLAS_LISTEN_ADDRESS", raising=False)
    config = ServerConfig.from_env()
    assert config.listen_address == "127.0.0.1"
    conf = (config.home / "conf" / "neo4j.conf").read_text()
    assert f"server.bolt.listen_address=127.0.0.1:{config.bolt_port}" in conf
    for port in (config.bolt_port, config.http_port):
        listeners = _listeners(port)
        assert listeners and listeners <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, f"port {port}: {listeners}"


# --- read-only query path: tests/reliability/test_read_path_corpus.py and test_read_path_limits.py ----------------

# --- parameterised Cypher ----------------------------------------------------------------------------------------

CYPHER = re.compile(r"\b(MATCH|MERGE|CREATE|RETURN|UNWIND|DELETE|CALL|SET|WHERE|YIELD)\b")
# Files allowed to build Cypher text, and why: only names from our own declarations go in.
BUILDS_CYPHER = {
    "loaders/schema.py": "constraint and index DDL from the schema declaration (labels, keys, properties)",
}


def _cypher_built_from_values(source: str) -> list[int]:
    """Line numbers where Cypher text is built with an f-string, ``+``/``%`` or ``.format``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        text = None
        if isinstance(node, ast.JoinedStr) and any(isinstance(value, ast.FormattedValue) for value in node.values):
            text = "".join(value.value for value in node.values if isinstance(value, ast.Constant))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            text = " ".join(side.value for side in (node.left, node.right)
                            if isinstance(side, ast.Constant) and isinstance(side.value, str))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
                and isinstance(node.func.value, ast.Constant):
            text = str(node.func.value.value)
        # A query has a clause followed by a pattern or expression; a printed label has neither.
        if text and CYPHER.search(text) and re.search(r"[(\[{]|\$", text):
            found.append(node.lineno)
    return sorted(found)


def test_no_cypher_is_built_from_values_outside_the_schema_declaration():
    found = [f"{path.relative_to(ROOT)}:{line}" for path in _product_python()
             if str(path.relative_to(ROOT)) not in BUILDS_CYPHER
             for line in _cypher_built_from_values(path.read_text(encoding="utf-8"))]
    assert found == []


# --- unpickling --------------------------------------------------------------------------------------------------

def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node


def test_every_torch_load_is_weights_only_and_nothing_else_unpickles():
    found = []
    for path in _product_python():
        for name, call in _calls(path):
            keywords = {keyword.arg: keyword.value for keyword in call.keywords}
            place = f"{path.relative_to(ROOT)}:{call.lineno} {name}"
            if name == "torch.load" and not (isinstance(keywords.get("weights_only"), ast.Constant)
                                             and keywords["weights_only"].value is True):
                found.append(place)
            if name in ("pickle.load", "pickle.loads", "dill.load", "joblib.load", "cloudpickle.load"):
                found.append(place)
            if name.endswith("np.load") or name == "numpy.load":
                allow = keywords.get("allow_pickle")
                if isinstance(allow, ast.Constant) and allow.value is True:
                    found.append(place)
            if name == "pd.read_pickle":
                found.append(place)
    assert found == []


def test_a_checkpoint_holding_an_arbitrary_object_is_refused_and_never_runs(tmp_path):
    MARKER.unlink(missing_ok=True)
    layer_dir = write_sae(tmp_path, 0, TopKSAE(8, 32, 4, torch.zeros(8)))
    checkpoint = torch.load(layer_dir / "sae_final.pt", weights_only=True)
    checkpoint["payload"] = Payload()
    torch.save(checkpoint, layer_dir / "sae_final.pt")
    with pytest.raises(AtlasError, match="weights-only"):
        load_sae(layer_dir)
    assert not MARKER.exists()


def test_a_vocabulary_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    MARKER.unlink(missing_ok=True)
    path = tmp_path / "token_dictionary.pkl"
    path.write_bytes(pickle.dumps({"ENSG00000000003": 4, "evil": Payload()}))
    with pytest.raises(AtlasError, match="refusing to load"):
        load_dictionary(path)
    assert not MARKER.exists()
    path.write_bytes(pickle.dumps({"ENSG00000000003": 4, "<cls>": 2}))
    assert load_dictionary(path) == {"ENSG00000000003": 4, "<cls>": 2}  # a plain dictionary still loads
