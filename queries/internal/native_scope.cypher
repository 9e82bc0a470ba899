// purpose: What decides whether GDS's native projection (every Feature, every AFFECTS edge) is exactly the visible
//   edges of some runs: the stored AFFECTS edges, the edges the runs recorded, how many runs show every shard.
// param runs: str[] — run ids
// returns: stored, recorded, whole_runs, features_without_edges
// `stored` comes from the count store (no edge is read). A run's `edge_count` grows in the transaction that
// finishes each shard and its `visible` list names the shards published after that (loaders/online.py: the shard
// visibility fence), so a run whose lists are as long as each other shows every edge it recorded; when the runs'
// recorded edges are all the stored ones, no other run, hidden shard or half-written shard has an edge.
CALL () { MATCH ()-[edge:AFFECTS]->() RETURN count(edge) AS stored }
CALL () {
  MATCH (run:Run) WHERE run.id IN $runs
  RETURN coalesce(sum(run.edge_count), 0) AS recorded,
         count(CASE WHEN run.edge_count IS NOT NULL
                     AND size(coalesce(run.visible, [])) = size(coalesce(run.shards, [])) THEN run END) AS whole_runs
}
CALL () {
  MATCH (feature:Feature) WHERE NOT EXISTS { (feature)-[:AFFECTS]-() }
  RETURN count(feature) AS features_without_edges
}
RETURN stored, recorded, whole_runs, features_without_edges
