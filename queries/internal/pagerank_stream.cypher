// purpose: PageRank of every projected feature (GDS definition: (1 - damping) + damping * incoming shares; unnormalised).
// param graph_name: str — the projection name
// param damping: float — damping factor
// param iterations: int — maximum iterations
// param tolerance: float — convergence tolerance
// returns: one row of parallel lists: node_id, pagerank
CALL gds.pageRank.stream($graph_name, {dampingFactor: $damping, maxIterations: $iterations, tolerance: $tolerance})
YIELD nodeId, score
RETURN collect(nodeId) AS node_id, collect(score) AS pagerank
