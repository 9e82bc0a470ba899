// purpose: Every visible AFFECTS edge of a scope with its statistics, optionally filtered by |d| and q or perm_q.
// param runs: str[] — run ids
// param layers: int[] = null — downstream layers (default all)
// param min_abs_d: float = null — keep edges with |d| at least this
// param max_q: float = null — keep edges whose q_column is at most this (edges without it are dropped when set)
// param q_column: str = q — q (BH of the t-test p) or perm_q (BH of the permutation p, `atlas trace calibrate`)
// returns: rows — one list [run, source, target, source_layer, target_layer, d, mean, std, consistency, n, p, q, sign,
//          perm_p, perm_q]
//          per edge (nulls kept, one record)
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence).
CALL () { MATCH (run:Run) WHERE run.id IN $runs UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (source:Feature)-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(shard)
WHERE edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
  AND ($min_abs_d IS NULL OR abs(edge.d) >= $min_abs_d) AND ($max_q IS NULL OR CASE $q_column WHEN 'perm_q' THEN edge.perm_q ELSE edge.q END <= $max_q)
RETURN collect([edge.run, source.uid, target.uid, source.layer, target.layer, edge.d, edge.mean, edge.std,
                edge.consistency, edge.n, edge.p, edge.q, edge.sign, edge.perm_p, edge.perm_q]) AS rows
