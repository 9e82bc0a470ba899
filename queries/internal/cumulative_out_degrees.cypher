// purpose: Out-degree of every projected feature into the layers up to each given layer, in one round trip.
// param graph_name: str — the projection name
// param layers: int[] — layers (each gets an in-memory node label AtlasUpToL<layer>: the features up to that layer)
// returns: one row per layer: layer, node_id, degree (parallel lists; only features with such edges: the others
//   are zero, and most features of a whole-model atlas are targets without any)
// A projection has one relationship type, so the edges into one layer are found through the target's layer: edges
// run from a layer to later ones only, so a feature's degree among the features up to layer L counts exactly its
// edges into layers up to L, and the degrees into L are the differences of consecutive layers' (degrees.py).
// GDS's filter expressions take no parameters; the layer is an integer read from the projection.
UNWIND $layers AS layer
CALL gds.graph.nodeLabel.mutate($graph_name, 'AtlasUpToL' + toString(layer),
                                {nodeFilter: 'n.layer <= ' + toString(toInteger(layer))})
YIELD nodeLabel
CALL gds.degree.stream($graph_name, {nodeLabels: [nodeLabel]}) YIELD nodeId, score
WITH layer, nodeId, score WHERE score > 0
RETURN layer, collect(nodeId) AS node_id, collect(toInteger(score)) AS degree
