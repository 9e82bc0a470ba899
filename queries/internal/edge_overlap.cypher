// purpose: Edges of run A (optionally within some downstream layers) that run B also has between the same features.
// param run_a: str — first run id
// param run_b: str — second run id
// param layers: int[] = null — downstream layers (default all)
// returns: shared
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence).
CALL () { MATCH (run:Run) UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (source:Feature)-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(run, shard)
WHERE edge.run = $run_a AND edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
  AND EXISTS { (source)-[other:AFFECTS]->(target) WHERE other.run = $run_b AND other.shard IN visible }
RETURN count(edge) AS shared
