"""The pinned official Neo4j + GDS + Neo4j Browser jars: fetched from a Maven repository, verified, and cached.

``neo4j-artifacts.lock`` names every jar by its Maven coordinates with its size and SHA-256. At run time the
missing jars are downloaded over HTTPS from Maven Central's repository layout (no Maven needed), each checked
against the lock before it joins the cache; a cached jar that changed is fetched again and a jar the lock does not
name is removed, because the server's class path is the whole directory. Maintainers regenerate the lock from
``neo4j-artifacts.pom.xml`` with Maven: ``python -m atlas.db.artifacts``.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from atlas.errors import AtlasError
from atlas.progress import StageProgress
from atlas.settings import cache_dir, maven_repository

NEO4J_VERSION = "5.26.30"
GDS_VERSION = "2.13.9"
# The Java entry points in those jars: the server, and neo4j-admin (whose processes the offline import looks for).
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"

_HERE = Path(__file__).parent
POM = _HERE / "neo4j-artifacts.pom.xml"
LOCK = _HERE / "neo4j-artifacts.lock"
MARKER = "verified.json"
# Maven Central answers one file per request: a few at a time hide the round trips without crowding the network.
PARALLEL_DOWNLOADS = 8
ATTEMPTS = 3


@dataclass(frozen=True)
class Jar:
    """One locked jar: its Maven coordinates, size in bytes and SHA-256."""

    group: str
    artifact: str
    version: str
    classifier: str | None
    size: int
    sha256: str

    @classmethod
    def parse(cls, coordinates: str, size: int, sha256: str) -> Jar:
        """A jar from ``groupId:artifactId:version[:classifier]``."""
        parts = coordinates.split(":")
        if len(parts) not in (3, 4) or not all(parts):
            raise ValueError(f"not groupId:artifactId:version[:classifier]: {coordinates!r}")
        return cls(*parts[:3], parts[3] if len(parts) == 4 else None, size, sha256)

    @property
    def coordinates(self) -> str:
        return ":".join(filter(None, (self.group, self.artifact, self.version, self.classifier)))

    @property
    def file_name(self) -> str:
        """The cached file's name: group-qualified, so that equal artifact names of two groups do not collide."""
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.group}.{self.artifact}-{self.version}{suffix}.jar"

    def url(self, repository: str) -> str:
        """Where the jar lives in a repository with Maven's standard layout."""
        suffix = f"-{self.classifier}" if self.classifier else ""
        return (f"{repository.rstrip('/')}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/"
                f"{self.artifact}-{self.version}{suffix}.jar")


@dataclass(frozen=True)
class Artifacts:
    """A verified directory of server jars."""

    lib_dir: Path
    neo4j_version: str = NEO4J_VERSION
    gds_version: str = GDS_VERSION

    @property
    def classpath(self) -> str:
        return str(self.lib_dir / "*")

    @property
    def plugins_dir(self) -> Path:
        """Links to the GDS jars: Neo4j registers procedures only from jars in its plugins directory."""
        return self.lib_dir.parent / "plugins"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_lock(lock: Path = LOCK) -> list[Jar]:
    """The locked jars, from lines of ``sha256  size  groupId:artifactId:version[:classifier]``."""
    jars = []
    for line in lock.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            sha256, size, coordinates = line.split()
            jars.append(Jar.parse(coordinates, int(size), sha256))
    return jars


def _stat_key(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_marker(path: Path) -> dict[str, dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _is_intact(path: Path, jar: Jar, verified: dict[str, dict]) -> bool:
    """Whether a cached jar matches the lock: hashed again only when its size or mtime moved since it was
    verified, so a start does not read 150 MB."""
    if not path.is_file():
        return False
    record = verified.get(jar.file_name)
    if record is not None and record["sha256"] == jar.sha256 and record["stat"] == _stat_key(path):
        return True
    return path.stat().st_size == jar.size and _sha256(path) == jar.sha256


def _download(jar: Jar, lib_dir: Path, repository: str, received_bytes: Callable[[int], None],
              attempts: int = ATTEMPTS, backoff_s: float = 1.0) -> None:
    """Fetch one jar into ``lib_dir`` and check it against the lock, retrying network failures and truncations."""
    url = jar.url(repository)
    target = lib_dir / jar.file_name
    # Hidden and not ending in .jar: a partial file never joins the class path, whoever reads the directory.
    partial = lib_dir / f".{jar.file_name}.{os.getpid()}.part"
    problem = ""
    for attempt in range(1, attempts + 1):
        received = 0
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as output:
                for block in iter(lambda: response.read(1 << 16), b""):
                    digest.update(block)
                    output.write(block)
                    received += len(block)
                    received_bytes(len(block))
            if digest.hexdigest() == jar.sha256:
                os.replace(partial, target)
                return
            problem = f"its SHA-256 differs from {LOCK.name} ({received} of {jar.size} bytes)"
        except urllib.error.HTTPError as error:
            problem = f"HTTP {error.code} {error.reason}"
            if 400 <= error.code < 500:
                attempts = attempt  # the repository does not have it: asking again will not help
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            problem = str(getattr(error, "reason", error))
        finally:
            partial.unlink(missing_ok=True)
        received_bytes(-received)
        if attempt < attempts:
            time.sleep(backoff_s * attempt)
    raise AtlasError(f"could not fetch {jar.coordinates} from {url}: {problem}")


def fetch(jars: list[Jar], lib_dir: Path, repository: str, backoff_s: float = 1.0,
          progress: StageProgress | None = None) -> None:
    """Download ``jars`` into ``lib_dir`` in parallel, reporting ``progress("download", bytes, total bytes)``; the
    first failure stops the rest and is raised as one line naming its jar."""
    total, received, lock = sum(jar.size for jar in jars), [0], threading.Lock()

    def received_bytes(count: int) -> None:
        with lock:  # downloads run in threads; the callback sees one running total
            received[0] += count
            if progress is not None:
                progress("download", received[0], total)

    with ThreadPoolExecutor(max_workers=PARALLEL_DOWNLOADS) as pool:
        futures = [pool.submit(_download, jar, lib_dir, repository, received_bytes, backoff_s=backoff_s)
                   for jar in jars]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            if future in done and future.exception() is not None:
                raise future.exception()


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``: two processes filling one cache wait for each other."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def sync(lib_dir: Path, jars: list[Jar], repository: str | None = None,
         progress: Callable[[str], object] = print, download_progress: StageProgress | None = None) -> None:
    """Make ``lib_dir`` hold exactly ``jars``: fetch the missing and the changed ones, remove any other jar.
    ``progress`` receives messages, ``download_progress`` the bytes received."""
    lib_dir.mkdir(parents=True, exist_ok=True)
    marker = lib_dir.parent / MARKER
    with _exclusive(lib_dir.parent / ".lock"):
        verified = _read_marker(marker)
        wanted = {jar.file_name for jar in jars}
        for stray in sorted(set(path.name for path in lib_dir.glob("*.jar")) - wanted):
            progress(f"Removing {stray} from {lib_dir}: {LOCK.name} does not name it")
            (lib_dir / stray).unlink()
        stale = [jar for jar in jars if not _is_intact(lib_dir / jar.file_name, jar, verified)]
        changed = [jar for jar in stale if (lib_dir / jar.file_name).exists()]
        for jar in changed:
            progress(f"{jar.file_name} in {lib_dir} differs from {LOCK.name}; fetching it again")
            (lib_dir / jar.file_name).unlink()
        if stale:
            repository = repository or maven_repository()
            megabytes = sum(jar.size for jar in stale) / 1e6
            progress(f"Fetching {len(stale)} jars ({megabytes:.0f} MB) of Neo4j {NEO4J_VERSION}, GDS {GDS_VERSION} "
                     f"and the Neo4j Browser from {repository} (once; cached in {lib_dir.parent})")
            fetch(stale, lib_dir, repository, progress=download_progress)
        records = {jar.file_name: {"sha256": jar.sha256, "stat": _stat_key(lib_dir / jar.file_name)} for jar in jars}
        if records != verified:
            marker.write_text(json.dumps(records, sort_keys=True))


def ensure_artifacts(progress: Callable[[str], object] = print,
                     download_progress: StageProgress | None = None) -> Artifacts:
    """Return the verified jar directory, fetching whatever the cache lacks first (see :func:`sync`)."""
    lib_dir = cache_dir() / f"neo4j-{NEO4J_VERSION}-gds-{GDS_VERSION}" / "lib"
    sync(lib_dir, read_lock(), progress=progress, download_progress=download_progress)
    return _link_plugins(Artifacts(lib_dir))


def _link_plugins(artifacts: Artifacts) -> Artifacts:
    plugins = artifacts.plugins_dir
    plugins.mkdir(exist_ok=True)
    for jar in artifacts.lib_dir.glob(f"org.neo4j.gds.*-{GDS_VERSION}.jar"):
        link = plugins / jar.name
        if not link.exists():
            link.symlink_to(jar)
    return artifacts


# One line of `mvn dependency:list -DoutputAbsoluteArtifactFilename=true`:
# groupId:artifactId:type[:classifier]:version:scope:/absolute/path
_LISTED = re.compile(r"^(?P<group>[^:\s]+):(?P<artifact>[^:]+):(?P<type>[^:]+):(?:(?P<classifier>[^:]+):)?"
                     r"(?P<version>[^:]+):(?P<scope>compile|runtime):(?P<path>.+)$")


def write_lock(pom: Path = POM, lock: Path = LOCK) -> Path:
    """Maintainers: resolve the POM with Maven (checksums checked against the repository's) and record every
    runtime jar's coordinates, size and SHA-256 in the lock."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise AtlasError("regenerating the lock needs Maven (mvn) on the PATH")
    with tempfile.TemporaryDirectory() as work:
        listing = Path(work) / "dependencies.txt"
        command = [mvn, "-B", "-q", "--strict-checksums", "-f", str(pom), "dependency:list",
                   "-DincludeScope=runtime", "-DoutputAbsoluteArtifactFilename=true", f"-DoutputFile={listing}"]
        result = subprocess.run(command, capture_output=True, text=True, cwd=work)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise AtlasError("Maven could not resolve the POM: " + " | ".join(tail))
        jars = []
        for line in listing.read_text().splitlines():
            match = _LISTED.match(line.strip())
            if match is None:
                continue
            if match["type"] != "jar":
                raise AtlasError(f"the POM resolves a {match['type']}, not a jar: {line.strip()}")
            path = Path(match["path"])
            coordinates = ":".join(filter(None, (match["group"], match["artifact"], match["version"],
                                                 match["classifier"])))
            jars.append(Jar.parse(coordinates, path.stat().st_size, _sha256(path)))
    jars.sort(key=lambda jar: jar.coordinates)
    header = (f"# Every jar of Neo4j {NEO4J_VERSION} + GDS {GDS_VERSION} + the Neo4j Browser, resolved from "
              f"{pom.name}: sha256  bytes  groupId:artifactId:version[:classifier]\n"
              "# Regenerate (maintainers, needs Maven): python -m atlas.db.artifacts\n")
    lock.write_text(header + "".join(f"{jar.sha256}  {jar.size}  {jar.coordinates}\n" for jar in jars))
    return lock


if __name__ == "__main__":
    print(write_lock())
