// purpose: Betweenness centrality of every projected feature, exact or from a seeded sample of source nodes.
// param graph_name: str — the projection name
// param config: map — {} for exact, {samplingSize: k, samplingSeed: s} for sampled
// returns: one row of parallel lists: node_id, betweenness
CALL gds.betweenness.stream($graph_name, $config)
YIELD nodeId, score
RETURN collect(nodeId) AS node_id, collect(score) AS betweenness
