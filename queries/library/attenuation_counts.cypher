// purpose: Edge counts per run and downstream layer (how the circuit attenuates with depth).
// param runs: str[] — run ids (comma-separated)
// param layers: int[] = null — downstream layers (comma-separated; default all)
// param max_q: float = null — only edges whose q_column is at most this (default every edge)
// param q_column: str = q — q (BH of the t-test p) or perm_q (BH of the permutation p, `atlas trace calibrate`)
// returns: run, layer, edges, excitatory
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence). A shard
// key names its run (loaders.schema.shard_key), so the scope's visible keys alone find exactly its edges,
// through the AFFECTS(shard) index, without reading each edge's run.
CALL () { MATCH (run:Run) WHERE run.id IN $runs UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH ()-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(shard)
WHERE edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
  AND ($max_q IS NULL OR CASE $q_column WHEN 'perm_q' THEN edge.perm_q ELSE edge.q END <= $max_q)
RETURN edge.run AS run, target.layer AS layer, count(edge) AS edges,
       count(CASE WHEN edge.sign = 'excitatory' THEN 1 END) AS excitatory
ORDER BY run, layer
