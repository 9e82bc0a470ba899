// purpose: Features of one run ranked by out-degree (live count over the run's AFFECTS edges).
// param run: str — the run id
// param layers: int[] = null — downstream layers to count (comma-separated; default all)
// param limit: int = 20 — how many features
// param max_q: float = null — only edges whose q_column is at most this (default every edge)
// param q_column: str = q — q (BH of the t-test p) or perm_q (BH of the permutation p, `atlas trace calibrate`)
// returns: uid, layer, label, annotated, out_degree, excitatory, inhibitory
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence). A shard
// key names its run (loaders.schema.shard_key), so the scope's visible keys alone find exactly its edges,
// through the AFFECTS(shard) index, without reading each edge's run.
CALL () { MATCH (run:Run) WHERE run.id = $run UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (source:Feature)-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(shard)
WHERE edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
  AND ($max_q IS NULL OR CASE $q_column WHEN 'perm_q' THEN edge.perm_q ELSE edge.q END <= $max_q)
WITH source, count(edge) AS out_degree, count(CASE WHEN edge.sign = 'excitatory' THEN 1 END) AS excitatory
ORDER BY out_degree DESC, source.uid
LIMIT $limit
RETURN source.uid AS uid, source.layer AS layer, source.label AS label,
       coalesce(source.annotated, false) OR EXISTS { (source)-[:ENRICHED_IN]->(:Term) } AS annotated,
       out_degree, excitatory, out_degree - excitatory AS inhibitory
