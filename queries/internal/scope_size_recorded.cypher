// purpose: The edge count the loaders recorded on the scope's Run nodes (no edge scan), and an upper bound on features.
// param runs: str[] — run ids
// returns: relationships, runs_with_count, nodes
MATCH (run:Run) WHERE run.id IN $runs
WITH sum(run.edge_count) AS relationships, count(run.edge_count) AS runs_with_count
MATCH (feature:Feature)
RETURN relationships, runs_with_count, count(feature) AS nodes
