// purpose: Where do the hubs of a trace run push cells? Top features by out-degree with their steering results.
// param run: str — the trace run id (AFFECTS edges)
// param steering_run: str = null — only this steering run (all when omitted)
// param limit: int = 20 — how many hubs
// returns: uid, label, out_degree, alpha, mean_ds, fraction_positive, direction, top_up, top_down
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence). A shard
// key names its run (loaders.schema.shard_key), so the scope's visible keys alone find exactly its edges,
// through the AFFECTS(shard) index, without reading each edge's run.
CALL () { MATCH (run:Run) WHERE run.id = $run UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (f:Feature)-[e:AFFECTS]->()
USING INDEX e:AFFECTS(shard)
WHERE e.shard IN visible
WITH f, count(e) AS out_degree
ORDER BY out_degree DESC, f.uid
LIMIT $limit
OPTIONAL MATCH (s:Steering)-[:STEERS]->(f)
WHERE $steering_run IS NULL OR s.run = $steering_run
RETURN f.uid AS uid, f.label AS label, out_degree, s.alpha AS alpha, s.mean_ds AS mean_ds,
       s.fraction_positive AS fraction_positive,
       CASE WHEN s.mean_ds > 0 THEN 'toward late' WHEN s.mean_ds < 0 THEN 'toward early' ELSE null END AS direction,
       s.top_up AS top_up, s.top_down AS top_down
ORDER BY out_degree DESC, uid, alpha
