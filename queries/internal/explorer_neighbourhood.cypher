// purpose: A feature's k-hop neighbourhood (k <= 2, both directions) pruned to its strongest edges by |d|.
// param uid: str — the feature uid
// param visible: int[] — visible shard keys of the runs in view (explorer_visible), read once per request
// param hops: int — 1 or 2
// param limit: int — N, the most edges kept
// returns: hop, run, source, target, d, sign (at most N rows)
// Hop 1: the feature's N strongest edges; hop 2: the edges of the neighbours those reach (not back to the feature).
// Kept: the N strongest of both hops, less each hop-2 edge with no end reached by a kept hop-1 edge (so the view stays
// connected). Order: |d| descending, ties by elementId. Exact, yet cheap: the N-th strongest hop-1 |d| (the floor)
// bounds every kept hop-2 edge, so hop 2 reads only d of each edge and the rest of those that pass it.
MATCH (center:Feature {uid: $uid})
CALL (center) {
  MATCH (center)-[edge:AFFECTS]-()
  WHERE edge.shard IN $visible
  WITH edge, abs(edge.d) AS strength ORDER BY strength DESC, elementId(edge) LIMIT $limit
  RETURN collect({edge: edge, strength: strength, hop: 1}) AS first,
         CASE WHEN count(edge) = $limit THEN min(strength) ELSE 0.0 END AS floor
}
CALL (center, first, floor) {
  UNWIND CASE WHEN $hops >= 2 THEN first ELSE [] END AS link
  WITH DISTINCT CASE WHEN startNode(link.edge) = center THEN endNode(link.edge) ELSE startNode(link.edge) END
       AS neighbour
  MATCH (neighbour)-[edge:AFFECTS]-(other)
  WHERE abs(edge.d) >= floor AND other <> center AND edge.shard IN $visible
  WITH DISTINCT edge
  WITH edge, abs(edge.d) AS strength ORDER BY strength DESC, elementId(edge) LIMIT $limit
  RETURN collect({edge: edge, strength: strength, hop: 2}) AS second
}
UNWIND first + second AS item
WITH center, item ORDER BY item.strength DESC, elementId(item.edge) LIMIT $limit
WITH center, collect(item) AS kept
WITH kept, [item IN kept WHERE item.hop = 1 |
            CASE WHEN startNode(item.edge) = center THEN endNode(item.edge) ELSE startNode(item.edge) END] AS reached
UNWIND kept AS item
WITH item, startNode(item.edge) AS source, endNode(item.edge) AS target
WHERE item.hop = 1 OR source IN reached OR target IN reached
RETURN item.hop AS hop, item.edge.run AS run, source.uid AS source, target.uid AS target, item.edge.d AS d,
       item.edge.sign AS sign
ORDER BY abs(d) DESC, source, target, run
