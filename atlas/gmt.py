"""GMT gene-set files (MSigDB, Enrichr, GO exports): one set per line, ``NAME<TAB>DESCRIPTION<TAB>GENE<TAB>...``.

Pure Python (no torch, no driver): the one parser of the enrichment and the annotation loaders. Malformed lines
raise an AtlasError naming the file and the line number. Blank lines are skipped; empty trailing fields are ignored;
Enrichr's weighted genes (``TP53,1.0``) keep the gene name only; ``.gmt.gz`` files are read transparently.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from atlas.errors import AtlasError


@dataclass(frozen=True)
class GeneSet:
    """One line of a GMT file."""

    name: str
    description: str
    genes: tuple[str, ...]
    line: int


def library_name(path: str | Path) -> str:
    """The default source name of a GMT file: its file name without ``.gmt`` / ``.gmt.gz`` / ``.txt``."""
    name = Path(path).name
    for suffix in (".gz", ".gmt", ".txt"):
        name = name.removesuffix(suffix)
    return name


def _lines(path: Path) -> list[str]:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError as error:
        raise AtlasError(f"{path}: GMT file not found") from error
    except (OSError, EOFError) as error:
        raise AtlasError(f"{path}: cannot read ({error})") from error
    lines = raw.split(b"\n")
    decoded = []
    for number, line in enumerate(lines, start=1):
        try:
            decoded.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as error:
            raise AtlasError(f"{path}:{number}: not UTF-8 text ({error.reason})") from error
    return decoded


def read_gmt(path: str | Path) -> list[GeneSet]:
    """Parse a GMT file; every malformed line is an AtlasError ``file:line: what is wrong``."""
    path = Path(path)
    sets: list[GeneSet] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise AtlasError(f"{path}:{number}: expected NAME<TAB>DESCRIPTION<TAB>GENE..., found {len(fields)} "
                             "tab-separated field(s)")
        name = fields[0].strip()
        if not name:
            raise AtlasError(f"{path}:{number}: the gene set name (first field) is empty")
        if name in seen:
            raise AtlasError(f"{path}:{number}: gene set {name!r} is already defined on line {seen[name]}")
        genes = [gene.split(",", 1)[0].strip() for gene in fields[2:]]
        genes = list(dict.fromkeys(gene for gene in genes if gene))
        if not genes:
            raise AtlasError(f"{path}:{number}: gene set {name!r} lists no genes")
        seen[name] = number
        sets.append(GeneSet(name, fields[1].strip(), tuple(genes), number))
    if not sets:
        raise AtlasError(f"{path}: no gene sets (an empty GMT file)")
    return sets


def gene_sets(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Set name -> genes of a GMT file (what an enrichment test needs)."""
    return {gene_set.name: gene_set.genes for gene_set in read_gmt(path)}
