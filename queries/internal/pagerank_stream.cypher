// purpose: PageRank of every projected feature (GDS definition: (1 - damping) + damping * incoming shares; unnormalised).
// param graph_name: str — the projection name
// param damping: float — damping factor
// param iterations: int — maximum iterations
// param tolerance: float — convergence tolerance
// returns: uid, pagerank
CALL gds.pageRank.stream($graph_name, {dampingFactor: $damping, maxIterations: $iterations, tolerance: $tolerance})
YIELD nodeId, score
RETURN gds.util.asNode(nodeId).uid AS uid, score AS pagerank
