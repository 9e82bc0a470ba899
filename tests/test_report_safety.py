"""Reports that are safe to paste and to write: shell-quoted commands, atomic files that never follow a planted link,
and every section drawn on a run whose features carry no activation frequency."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest

from atlas import report
from atlas.analysis.scope import resolve_scope
from tests.conftest import wipe
from tests.graphs import heavy_tailed_run
from tests.reliability.processes import error_lines
from tests.reliability.test_bad_inputs import run_main

pytestmark = pytest.mark.neo4j
MARKER = Path(f"/tmp/atlas-report-pwned-{os.getpid()}")
HOSTILE = f"x; touch {MARKER} #"


@pytest.fixture(scope="module")
def hostile_run(graph):
    """A run with a shell-hostile id whose features have no activation frequency (loaded without a catalog), so
    some degree-vs-frequency plots have nothing positive to draw."""
    wipe(graph)
    heavy_tailed_run(graph, HOSTILE, np.random.default_rng(8), sources=40, targets=10)
    graph.write("MATCH (f:Feature) REMOVE f.activation_freq")
    return resolve_scope(graph, [HOSTILE])


@pytest.fixture(scope="module")
def written(graph, hostile_run, tmp_path_factory):
    built = report.build_report(graph, hostile_run)
    return built, report.write_report(built, tmp_path_factory.mktemp("report"))


def test_a_report_on_features_without_activation_frequency_draws_every_section(written):
    built, paths = written
    assert "bias" in [section.key for section in built.sections]
    assert paths["html"].is_file() and len(list(paths["figures"].glob("*.png"))) >= 5


def test_every_command_the_report_prints_is_shell_safe(written):
    built, paths = written
    markdown = paths["markdown"].read_text()
    commands = re.findall(r"```\n(atlas [^\n]*)\n```", markdown)
    commands += re.findall(r"Reproduce the whole report with `([^`]*)`", markdown)
    assert len(commands) == len(built.sections) + 1
    MARKER.unlink(missing_ok=True)
    for command in commands:
        # Pasted into a shell where `atlas` prints its arguments: the run id arrives whole and nothing else runs.
        shell = subprocess.run(["bash", "-c", f"atlas() {{ printf '%s\\n' \"$@\"; }}; {command}"],
                               capture_output=True, text=True, timeout=30)
        assert shell.returncode == 0, shell.stderr
        assert HOSTILE in shell.stdout.splitlines() and shlex.split(command)[1:] == shell.stdout.splitlines()
    assert not MARKER.exists()


def test_a_symlink_planted_at_report_md_is_replaced_not_followed(graph, hostile_run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").symlink_to(victim)
    report.write_report(report.build_report(graph, hostile_run), out)
    assert victim.read_text() == "precious"
    assert not (out / "report.md").is_symlink() and (out / "report.md").read_text().startswith("# Circuit Atlas")
    assert [path.name for path in out.iterdir() if path.name.startswith(".")] == []  # no temporary left behind


@pytest.mark.parametrize("command", [["report", "--run", HOSTILE], ["analyze", "degrees", "--run", HOSTILE]])
def test_an_unwritable_out_is_one_line(hostile_run, command, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / ("r" if command[0] == "report" else "t.csv")  # a path below a file can never be created
    code, stderr = run_main([*command, "--out", str(out)], capsys, monkeypatch)
    lines = error_lines(stderr)
    assert code != 0 and len(lines) == 1 and str(blocker) in lines[0], stderr
