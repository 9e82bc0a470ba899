// purpose: Betweenness centrality of every projected feature, exact or from a seeded sample of source nodes.
// param graph_name: str — the projection name
// param config: map — {} for exact, {samplingSize: k, samplingSeed: s} for sampled
// returns: uid, betweenness
CALL gds.betweenness.stream($graph_name, $config)
YIELD nodeId, score
RETURN gds.util.asNode(nodeId).uid AS uid, score AS betweenness
