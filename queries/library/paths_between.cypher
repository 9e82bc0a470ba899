// purpose: Shortest directed AFFECTS paths (at most 8 hops) from one feature to another, optionally within one run.
// param source: str — uid of the first feature
// param target: str — uid of the last feature
// param run: str = null — only edges of this run (default every run)
// param limit: int = 10 — how many paths
// returns: hops, features, runs, d
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence).
CALL () { MATCH (run:Run) UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH path = allShortestPaths((:Feature {uid: $source})-[:AFFECTS*..8]->(:Feature {uid: $target}))
WHERE all(edge IN relationships(path) WHERE edge.shard IN visible AND ($run IS NULL OR edge.run = $run))
RETURN length(path) AS hops, [node IN nodes(path) | node.uid] AS features,
       [edge IN relationships(path) | edge.run] AS runs, [edge IN relationships(path) | edge.d] AS d
LIMIT $limit
