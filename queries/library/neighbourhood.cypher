// purpose: A feature's neighbourhood across layers: edges in and out grouped by the neighbour's layer, strongest first.
// param uid: str — the feature uid
// param run: str = null — only edges of this run (default every run)
// param per_layer: int = 5 — how many neighbours to list per layer and direction
// returns: direction, layer, edges, excitatory, strongest
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence).
CALL () { MATCH (run:Run) UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (feature:Feature {uid: $uid})
CALL (feature, visible) {
  MATCH (feature)-[edge:AFFECTS]->(neighbour:Feature)
  WHERE edge.shard IN visible AND ($run IS NULL OR edge.run = $run)
  RETURN 'out' AS direction, neighbour, edge
  UNION ALL
  MATCH (feature)<-[edge:AFFECTS]-(neighbour:Feature)
  WHERE edge.shard IN visible AND ($run IS NULL OR edge.run = $run)
  RETURN 'in' AS direction, neighbour, edge
}
WITH direction, neighbour.layer AS layer, neighbour, edge ORDER BY abs(edge.d) DESC
WITH direction, layer, count(edge) AS edges, count(CASE WHEN edge.sign = 'excitatory' THEN 1 END) AS excitatory,
     collect(neighbour.uid)[..$per_layer] AS strongest
RETURN direction, layer, edges, excitatory, strongest
ORDER BY direction DESC, layer
