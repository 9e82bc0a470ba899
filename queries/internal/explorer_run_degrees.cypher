// purpose: Out- and in-degree of every feature with an edge among some visible shards (one run's fence).
// param visible: int[] — the run's visible shard keys (explorer_visible), read once per request
// returns: one row of parallel lists: uid, out_degree, in_degree
// The keys name their run (loaders.schema.shard_key), so they alone find the run's edges through the AFFECTS(shard)
// index; an edge of a shard not (yet) visible is never counted.
CALL () {
  MATCH (source:Feature)-[edge:AFFECTS]->()
  USING INDEX edge:AFFECTS(shard)
  WHERE edge.shard IN $visible
  RETURN source.uid AS uid, count(edge) AS out_degree, 0 AS in_degree
  UNION ALL
  MATCH ()-[edge:AFFECTS]->(target:Feature)
  USING INDEX edge:AFFECTS(shard)
  WHERE edge.shard IN $visible
  RETURN target.uid AS uid, 0 AS out_degree, count(edge) AS in_degree
}
WITH uid, sum(out_degree) AS out_degree, sum(in_degree) AS in_degree
RETURN collect(uid) AS uid, collect(out_degree) AS out_degree, collect(in_degree) AS in_degree
