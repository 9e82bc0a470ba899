// purpose: Edges of run A (optionally within some downstream layers) that run B also has between the same features.
// param run_a: str — first run id
// param run_b: str — second run id
// param layers: int[] = null — downstream layers (default all)
// returns: shared
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence). A shard
// key names its run (loaders.schema.shard_key), so the scope's visible keys alone find exactly its edges,
// through the AFFECTS(shard) index, without reading each edge's run.
CALL () { MATCH (run:Run) WHERE run.id = $run_a UNWIND run.visible AS key RETURN collect(key) AS visible }
CALL () { MATCH (run:Run) WHERE run.id = $run_b UNWIND run.visible AS key RETURN collect(key) AS visible_b }
MATCH (source:Feature)-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(shard)
WHERE edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
  AND EXISTS { (source)-[other:AFFECTS]->(target) WHERE other.shard IN visible_b }
RETURN count(edge) AS shared
