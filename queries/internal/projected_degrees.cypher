// purpose: Every projected feature with its GDS node id, uid, layer, out-degree and in-degree, in one round trip.
// param graph_name: str — the projection name
// returns: one row of parallel lists: node_id, uid, layer, out_degree; in_node_id, in_degree (in their own order)
CALL () {
  CALL gds.degree.stream($graph_name) YIELD nodeId, score
  WITH nodeId, score, gds.util.asNode(nodeId) AS feature
  RETURN collect(nodeId) AS node_id, collect(feature.uid) AS uid, collect(feature.layer) AS layer,
         collect(toInteger(score)) AS out_degree
}
CALL () {
  CALL gds.degree.stream($graph_name, {orientation: 'REVERSE'}) YIELD nodeId, score
  RETURN collect(nodeId) AS in_node_id, collect(toInteger(score)) AS in_degree
}
RETURN node_id, uid, layer, out_degree, in_node_id, in_degree
