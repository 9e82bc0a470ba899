// purpose: Every visible AFFECTS edge of a scope with its statistics, optionally filtered by |d| and q.
// param runs: str[] — run ids
// param layers: int[] = null — downstream layers (default all)
// param min_abs_d: float = null — keep edges with |d| at least this
// param max_q: float = null — keep edges with q at most this (edges without q are dropped when set)
// returns: rows — one list [run, source, target, source_layer, target_layer, d, mean, std, consistency, n, p, q, sign]
//          per edge (nulls kept, one record)
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence).
CALL () { MATCH (run:Run) WHERE run.id IN $runs UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (source:Feature)-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(shard)
WHERE edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
  AND ($min_abs_d IS NULL OR abs(edge.d) >= $min_abs_d) AND ($max_q IS NULL OR edge.q <= $max_q)
RETURN collect([edge.run, source.uid, target.uid, source.layer, target.layer, edge.d, edge.mean, edge.std,
                edge.consistency, edge.n, edge.p, edge.q, edge.sign]) AS rows
