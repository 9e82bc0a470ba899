// purpose: The feature behind each GDS node id of a projection: uid, label and layer.
// param node_ids: int[] — GDS node ids
// returns: rows — one list [node_id, uid, label, layer] per node (nulls kept, one record)
UNWIND $node_ids AS node_id
WITH node_id, gds.util.asNode(node_id) AS feature
RETURN collect([node_id, feature.uid, feature.label, feature.layer]) AS rows
