"""Neo4j heap in messages: byte counts for people, the one-line refusal of work that will not fit, and the server's
own answers that memory ran out (or would have) as that same kind of line."""

from __future__ import annotations

import re

from neo4j.exceptions import Neo4jError

from atlas.errors import AtlasError

HEAP_ADVICE = ("give the server more heap (ATLAS_NEO4J_HEAP=4g atlas db stop/start, or the heap of the NEO4J_URI "
               "server) or narrow the scope with --layer")
# GDS's own guard before an algorithm runs (it compares its estimate with the heap it sees as available).
_GDS_GUARD = re.compile(r"Memory required to run (?P<what>.+?) \((?P<required>\d+)b\) exceeds available memory "
                        r"\((?P<free>\d+)b\)")
# GDS's guard before a projection: sizes already in words ("1234 MiB").
_GDS_PROJECTION_GUARD = re.compile(r"estimated memory \((?P<required>[^)]+)\) exceeds current free memory "
                                   r"\((?P<free>[^)]+)\)")
_PROCEDURE = re.compile(r"procedure `(?P<name>[^`]+)`")


def human_bytes(size: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def heap_refusal(what: str, required_bytes: int, free_bytes: int) -> AtlasError:
    """The one-line refusal of work that needs more Neo4j heap than is free, saying what to change."""
    return AtlasError(f"{what} needs about {human_bytes(required_bytes)} of Neo4j heap but only "
                      f"{human_bytes(free_bytes)} is free: {HEAP_ADVICE}")


def no_estimate(error: Neo4jError) -> bool:
    """True when the server has no memory estimate for a GDS procedure (no ``.estimate`` procedure, or GDS says
    the estimate is not implemented), which is no reason to refuse the algorithm itself."""
    message = error.message or ""
    return ("MemoryEstimationNotImplemented" in message
            or ("ProcedureNotFound" in (error.code or "") and ".estimate`" in message))


def memory_error(error: Neo4jError) -> AtlasError | None:
    """The one-line AtlasError of a server answer about memory (out of heap, over the transaction limit, refused by
    GDS's guard, no estimate); None for any other error."""
    code, message = error.code or "", error.message or ""
    procedure = _PROCEDURE.search(message)
    where = f" running {procedure['name']}" if procedure else ""
    if "MemoryPoolOutOfMemoryError" in code:
        return AtlasError("the statement needed more memory than one transaction may use (db.memory.transaction.max; "
                          f"the managed server allows half its heap): {HEAP_ADVICE}")
    if "OutOfMemoryError" in code or "java.lang.OutOfMemoryError" in message:
        return AtlasError(f"Neo4j ran out of heap{where}: {HEAP_ADVICE}")
    if guard := _GDS_GUARD.search(message):
        return heap_refusal(f"running {guard['what']}", int(guard["required"]), int(guard["free"]))
    if guard := _GDS_PROJECTION_GUARD.search(message):
        return AtlasError(f"GDS refused{where}: it needs about {guard['required']} of Neo4j heap but only "
                          f"{guard['free']} is free: {HEAP_ADVICE}")
    if "MemoryEstimationNotImplemented" in message:
        return AtlasError(f"GDS has no memory estimate for {procedure['name'] if procedure else 'this algorithm'}: "
                          "run the algorithm itself (GDS then skips its memory guard)")
    return None
