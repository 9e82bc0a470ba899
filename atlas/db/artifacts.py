"""Resolve the pinned official Neo4j + GDS jars from Maven Central, verify them, and cache them.

Maven checks each download against the repository's checksums (``--strict-checksums``); we then check every jar
against the SHA-256 lock committed next to the POM, so a changed artifact or an unexpected extra jar is refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from atlas.errors import AtlasError
from atlas.settings import cache_dir

NEO4J_VERSION = "5.26.30"
GDS_VERSION = "2.13.9"

_HERE = Path(__file__).parent
POM = _HERE / "neo4j-artifacts.pom.xml"
LOCK = _HERE / "neo4j-artifacts.sha256"


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


def read_lock(lock: Path = LOCK) -> dict[str, str]:
    """The expected ``{jar file name: sha256}``."""
    expected = {}
    for line in lock.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            checksum, name = line.split()
            expected[name] = checksum
    return expected


def digest_dir(lib_dir: Path) -> dict[str, str]:
    """``{jar file name: sha256}`` of every jar in a directory."""
    return {jar.name: _sha256(jar) for jar in sorted(lib_dir.glob("*.jar"))}


def verify(lib_dir: Path, expected: dict[str, str]) -> None:
    """Refuse a jar directory that differs from the lock in any file or checksum."""
    actual = digest_dir(lib_dir)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(name for name in set(actual) & set(expected) if actual[name] != expected[name])
    if missing or extra or changed:
        raise AtlasError(
            f"Neo4j artifacts in {lib_dir} do not match {LOCK.name}: "
            f"missing {missing[:3]}, unexpected {extra[:3]}, checksum mismatch {changed[:3]}"
        )


def _maven_resolve(output_dir: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise AtlasError("Maven (mvn) is needed once to fetch Neo4j and GDS from Maven Central; install it")
    with tempfile.TemporaryDirectory() as work:
        pom = Path(work) / "pom.xml"
        shutil.copy(POM, pom)
        command = [
            mvn, "-B", "-q", "--strict-checksums", "-f", str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={output_dir}", "-Dmdep.prependGroupId=true", "-DincludeScope=runtime",
        ]
        result = subprocess.run(command, capture_output=True, text=True, cwd=work)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise AtlasError("Maven could not resolve the Neo4j/GDS artifacts: " + " | ".join(tail))


def ensure_artifacts(progress=print) -> Artifacts:
    """Return the verified jar directory, downloading and verifying it first if it is not cached yet."""
    lib_dir = cache_dir() / f"neo4j-{NEO4J_VERSION}-gds-{GDS_VERSION}" / "lib"
    marker = lib_dir.parent / "verified.sha256"
    lock_text = LOCK.read_text()
    if lib_dir.is_dir() and marker.is_file() and marker.read_text() == lock_text:
        return _link_plugins(Artifacts(lib_dir))
    progress(f"Fetching Neo4j {NEO4J_VERSION} and GDS {GDS_VERSION} from Maven Central "
             f"(once; cached in {lib_dir.parent})")
    lib_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-", dir=lib_dir.parent))
    try:
        _maven_resolve(staging)
        verify(staging, read_lock())
        if lib_dir.exists():
            shutil.rmtree(lib_dir)
        os.replace(staging, lib_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(lock_text)
    return _link_plugins(Artifacts(lib_dir))


def _link_plugins(artifacts: Artifacts) -> Artifacts:
    plugins = artifacts.plugins_dir
    plugins.mkdir(exist_ok=True)
    for jar in artifacts.lib_dir.glob(f"org.neo4j.gds.*-{GDS_VERSION}.jar"):
        link = plugins / jar.name
        if not link.exists():
            link.symlink_to(jar)
    return artifacts


def write_lock() -> Path:
    """Maintainers: resolve the POM afresh and record every jar's SHA-256 in the lock file."""
    with tempfile.TemporaryDirectory() as staging:
        _maven_resolve(Path(staging))
        lines = [f"{checksum}  {name}" for name, checksum in digest_dir(Path(staging)).items()]
    header = f"# SHA-256 of every jar of Neo4j {NEO4J_VERSION} + GDS {GDS_VERSION} (python -m atlas.db.artifacts)\n"
    LOCK.write_text(header + "\n".join(lines) + "\n")
    return LOCK


if __name__ == "__main__":
    print(write_lock())
