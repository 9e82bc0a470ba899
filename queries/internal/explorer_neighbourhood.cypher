// purpose: Candidate edges of a feature's k-hop neighbourhood (k <= 2): its strongest edges by |d|, then the strongest edges of those neighbours.
// param uid: str — the feature uid
// param visible: int[] — visible shard keys of the runs in view (explorer_visible), read once per request
// param hops: int — 1 or 2
// param limit: int — at most this many edges per hop
// returns: hop, run, source, target, d, sign
// Undirected: a neighbour is a feature at either end of an AFFECTS edge. The second hop only expands the neighbours
// reached through the kept first-hop edges, which bounds the work for a hub (thousands of first-hop edges).
MATCH (center:Feature {uid: $uid})
CALL (center) {
  MATCH (center)-[edge:AFFECTS]-(:Feature)
  WHERE edge.shard IN $visible
  WITH edge ORDER BY abs(edge.d) DESC, elementId(edge) LIMIT $limit
  RETURN collect(edge) AS first
}
CALL (center, first) {
  UNWIND CASE WHEN $hops >= 2 THEN first ELSE [] END AS edge
  WITH DISTINCT CASE WHEN startNode(edge) = center THEN endNode(edge) ELSE startNode(edge) END AS neighbour
  MATCH (neighbour)-[edge:AFFECTS]-(other:Feature)
  WHERE edge.shard IN $visible AND other <> center
  WITH DISTINCT edge ORDER BY abs(edge.d) DESC, elementId(edge) LIMIT $limit
  RETURN collect(edge) AS second
}
UNWIND [edge IN first | [1, edge]] + [edge IN second | [2, edge]] AS pair
WITH pair[0] AS hop, pair[1] AS edge
RETURN hop, edge.run AS run, startNode(edge).uid AS source, endNode(edge).uid AS target, edge.d AS d,
       edge.sign AS sign
