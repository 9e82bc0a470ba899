// purpose: Every projected feature with its GDS node id, uid, layer and out-degree (the id -> uid map of a projection).
// param graph_name: str — the projection name
// returns: one row of parallel lists: node_id, uid, layer, out_degree
CALL gds.degree.stream($graph_name) YIELD nodeId, score
WITH nodeId, score, gds.util.asNode(nodeId) AS feature
RETURN collect(nodeId) AS node_id, collect(feature.uid) AS uid, collect(feature.layer) AS layer,
       collect(toInteger(score)) AS out_degree
