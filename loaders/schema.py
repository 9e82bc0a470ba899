"""The graph model of DESIGN.md section 4, declared once.

The constraint setup (`atlas db init`), the online loader and the offline import writer all read these
declarations: labels, their unique key, their typed properties, and the relationship types with theirs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import queries
from atlas.db.connection import Graph


@dataclass(frozen=True)
class NodeType:
    """A node label with its unique key property and typed properties (Python type names: int, float, str, bool)."""

    label: str
    key: str
    properties: dict[str, str] = field(default_factory=dict)
    indexed: tuple[str | tuple[str, ...], ...] = ()  # a tuple entry is one composite index


@dataclass(frozen=True)
class RelationshipType:
    """A relationship type between two labels with its typed properties."""

    type: str
    source: str
    target: str
    properties: dict[str, str] = field(default_factory=dict)
    indexed: tuple[str | tuple[str, ...], ...] = ()  # a tuple entry is one composite index


FEATURE = NodeType(
    "Feature", "uid",
    {"uid": "str", "model": "str", "sae": "str", "layer": "int", "index": "int",
     "activation_freq": "float", "annotated": "bool", "label": "str",
     # hub write-back of `atlas analyze hubs --write` (atlas.analysis.hubs): one scope per feature
     "hub_scope": "str", "hub": "bool", "hub_rank": "int", "hub_degree": "float", "hub_in_degree": "float",
     "hub_pagerank": "float", "hub_betweenness": "float",
     # module write-back of `atlas analyze modules --write` (atlas.analysis.modules): one scope per feature
     "module_scope": "str", "module": "int",
     # `atlas trace calibrate` of a source feature (loaders.runs.calibration_rows): the last run loaded
     "calibration_run": "str", "calibration_fdr": "float", "calibration_observed_edges": "int",
     "calibration_expected_null_edges": "float", "calibration_surviving_edges": "int"},
    indexed=("layer", "annotated", "model", ("hub_scope", "hub")),
)
GENE = NodeType("Gene", "id", {"id": "str", "symbol": "str"}, indexed=("symbol",))
# id is source:name (see term_id), so a GMT set and an enrichment result of the same library meet in one node.
TERM = NodeType("Term", "id", {"id": "str", "name": "str", "source": "str", "description": "str"},
                indexed=("name", "source"))
RUN = NodeType(
    "Run", "id",
    {"id": "str", "kind": "str", "model": "str", "sae": "str", "source_layer": "int",
     "downstream_layers": "int[]", "n_cells": "int", "thresholds": "str", "created_at": "str", "status": "str",
     # loader bookkeeping (loaders.runs): status is loading | partial | loaded | deleting; shards lists the shard
     # files whose edges are all in the graph (with their SHA-256), in manifest order. visible holds the shard keys
     # (shard_key) whose edges readers may count: a shard joins it in a transaction of its own, after all its edges
     # committed.
     "cell_set_digest": "str", "code_version": "str", "trace_status": "str", "edge_count": "int",
     "shards": "str[]", "shard_checksums": "str[]", "visible": "int[]",
     # `atlas trace calibrate` (loaders.runs.calibration_properties): the summary as JSON and its headline numbers
     "calibration": "str", "calibration_n_perm": "int", "calibration_n_features": "int",
     "calibration_observed_edges": "int", "calibration_expected_null_edges": "float",
     "calibration_empirical_fdr": "float", "calibration_estimated_total_edges": "int"},
)
# The online loader's mark of one shard being written (loaders.online): how many of its rows are committed. It
# exists from the shard's first batch until its last; one left behind names a shard a stopped load must clean.
# One node per shard (not properties of the Run node) so that shards load concurrently without sharing a lock.
SHARD_LOAD = NodeType("ShardLoad", "id", {"id": "str", "run": "str", "shard": "str", "offset": "int"})
INTERACTION = NodeType(
    "Interaction", "id",
    {"id": "str", "run": "str", "order": "int",
     # combinatorial ablation of one feature set (atlas.experiments): how it was chosen, under which definition
     # (study or whole-set; absent on sets stored before it was recorded: whole-set) and its summary
     "selection": "str", "term": "str", "members": "str[]", "target_layer": "int", "n_cells": "int",
     "definition": "str", "n_targets": "int", "median_redundancy": "float", "mean_redundancy": "float",
     "median_interaction": "float", "median_marginal": "float", "mean_abs_interaction": "float",
     "mean_abs_full_d": "float", "n_superadditive": "int", "n_additive": "int", "n_subadditive": "int",
     "fraction_superadditive": "float", "fraction_additive": "float", "fraction_subadditive": "float",
     "redundancy_by_order": "float[]", "pair_redundancy": "float[]"},
    indexed=("run",),
)
STEERING = NodeType(
    "Steering", "id",
    {"id": "str", "run": "str", "alpha": "float",
     # trajectory steering of one feature at one alpha (atlas.experiments): state shift toward late pseudotime
     "feature": "str", "layer": "int", "n_cells": "int", "switch_d": "float", "fraction_positive": "float",
     "mean_ds": "float", "std_ds": "float", "top_genes": "str[]", "top_up": "str[]", "top_down": "str[]"},
    indexed=("run", "feature"),
)
# Held while one writer loads or deletes a run (loaders.lock); it exists only while that writer runs.
LOAD_LOCK = NodeType("LoadLock", "run", {"run": "str", "holder": "str", "host": "str", "pid": "int",
                                         "operation": "str", "since": "str"})
NODE_TYPES = (FEATURE, GENE, TERM, RUN, SHARD_LOAD, INTERACTION, STEERING, LOAD_LOCK)

AFFECTS = RelationshipType(
    "AFFECTS", "Feature", "Feature",
    {"run": "str", "shard": "int", "d": "float", "mean": "float", "std": "float", "consistency": "float",
     "n": "int", "p": "float", "q": "float", "perm_p": "float", "perm_q": "float", "sign": "str"},
    # One index on the shard key, which names the run too (a hash of run id and shard file): a run-scoped scan seeks
    # the run's visible keys, a delete all its keys; cheaper to maintain and to seek than the composite (run, shard)
    # index it replaces (benchmarks/README.md, "AFFECTS index").
    indexed=("shard",),
)
# Indexes earlier versions created and this model replaces: dropped by apply_schema (a no-op when absent).
OBSOLETE_INDEXES = ("affects_run_shard",)
TOP_GENE = RelationshipType("TOP_GENE", "Feature", "Gene", {"rank": "int", "weight": "float"})
ENRICHED_IN = RelationshipType("ENRICHED_IN", "Feature", "Term",
                               {"p_adj": "float", "odds_ratio": "float", "n_overlap": "int"})
MEMBER_OF = RelationshipType("MEMBER_OF", "Gene", "Term", {})
# Experiment results: an Interaction's member features and its per-target statistics; a Steering's feature.
HAS_MEMBER = RelationshipType("HAS_MEMBER", "Interaction", "Feature", {"position": "int"})
INTERACTS_ON = RelationshipType(
    "INTERACTS_ON", "Interaction", "Feature",
    {"run": "str", "full_d": "float", "sum_single_abs": "float", "redundancy": "float", "interaction": "float",
     "marginal_last": "float", "max_abs_d": "float", "class": "str"},
)
STEERS = RelationshipType("STEERS", "Steering", "Feature", {"run": "str"})
RELATIONSHIP_TYPES = (AFFECTS, TOP_GENE, ENRICHED_IN, MEMBER_OF, HAS_MEMBER, INTERACTS_ON, STEERS)


def escape_name(name: str, separators: str) -> str:
    """``name`` with ``%`` and each of ``separators`` percent-encoded (``m/n`` -> ``m%2Fn``): names joined by those
    separators split back one way only, whatever characters they hold, and a name without them is unchanged."""
    for character in "%" + separators:
        name = name.replace(character, f"%{ord(character):02X}")
    return name


def feature_uid(model: str, sae: str, layer: int, index: int) -> str:
    """The stable, human-readable feature id, e.g. ``geneformer/biosae/L05/F0898``.

    ``/`` and ``%`` in the model and SAE names are escaped (:func:`escape_name`), so model ``m/n`` with SAE ``s``
    and model ``m`` with SAE ``n/s`` are different features.
    """
    return f"{escape_name(model, '/')}/{escape_name(sae, '/')}/L{layer:02d}/F{index:04d}"


def shard_key(run_id: str, shard_file: str) -> int:
    """The AFFECTS ``shard`` property of one shard of one run: a 63-bit integer from SHA-256 of both names.

    The same in every load (online, offline, after a crash), distinct across runs with overwhelming probability;
    readers keep an edge only when its key is in its Run node's ``visible`` list (the shard visibility fence).
    """
    digest = hashlib.sha256(f"{run_id}\0{shard_file}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def term_id(source: str, name: str) -> str:
    """The id of a gene set or ontology term: its library and its name, e.g. ``KEGG_2021_Human:Apoptosis``.

    ``:`` and ``%`` in the library are escaped (:func:`escape_name`), so the first ``:`` always ends it: library
    ``a:b`` with set ``c`` and library ``a`` with set ``b:c`` are different terms.
    """
    return f"{escape_name(source, ':')}:{name}"


def gene_id(name: str) -> str:
    """The id of a gene given by symbol or Ensembl id: upper-cased, so catalogs and GMT files meet in one node."""
    return name.strip().upper()


def schema_statements() -> list[str]:
    """Idempotent DDL for every uniqueness constraint and index of the model (and drops of obsolete indexes).

    Labels and property names come from the declarations above, never from user input, so the names can be
    spelled into the statements (Cypher cannot parameterise them).
    """
    def index(name: str, pattern: str, variable: str, indexed: str | tuple[str, ...]) -> str:
        names = (indexed,) if isinstance(indexed, str) else indexed
        return (f"CREATE INDEX {name.lower()}_{'_'.join(names)} IF NOT EXISTS FOR {pattern} "
                f"ON ({', '.join(f'{variable}.{prop}' for prop in names)})")

    statements = []
    for node in NODE_TYPES:
        statements.append(
            f"CREATE CONSTRAINT {node.label.lower()}_{node.key}_unique IF NOT EXISTS "
            f"FOR (n:{node.label}) REQUIRE n.{node.key} IS UNIQUE"
        )
        statements += [index(node.label, f"(n:{node.label})", "n", indexed) for indexed in node.indexed]
    for rel in RELATIONSHIP_TYPES:
        statements += [index(rel.type, f"()-[r:{rel.type}]-()", "r", indexed) for indexed in rel.indexed]
    return statements + [f"DROP INDEX {name} IF EXISTS" for name in OBSOLETE_INDEXES]


def apply_schema(graph: Graph) -> int:
    """Create every constraint and index (a no-op when they exist) and wait until they are online."""
    statements = schema_statements()
    for statement in statements:
        graph.write(statement)
    graph.write(queries.internal("await_indexes").text)
    return len(statements)
