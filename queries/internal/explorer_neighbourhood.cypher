// purpose: A feature's k-hop neighbourhood (k <= 2, both directions) pruned to its strongest paths by |d|.
// param uid: str — the feature uid
// param visible: int[] — visible shard keys of the runs in view (explorer_visible), read once per request
// param hops: int — 1 or 2
// param limit: int — N, the most edges kept
// returns: hop, run, source, target, d, sign, strength (min(N, edges in the neighbourhood) rows)
// Strength of a hop-1 edge: its |d|; of a hop-2 edge (an edge of a neighbour, not back to the feature): the weaker of
// its |d| and the |d| of the strongest hop-1 edge reaching it (a path is as strong as its weakest link). Kept: the N
// strongest, ties by hop, then elementId. Ranking hop 1 first on ties keeps the view connected by construction: a
// kept hop-2 edge's link is at least as strong, so it ranks before it. Exact, yet cheap: only the centre's N
// strongest edges can be links (a path through a weaker one is no stronger than the N-th hop-1 edge, which ranks
// before it), and that N-th |d| (the floor) bounds every kept hop-2 edge, so hop 2 reads only d until it passes.
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
  WITH CASE WHEN startNode(link.edge) = center THEN endNode(link.edge) ELSE startNode(link.edge) END AS neighbour,
       max(link.strength) AS reach
  MATCH (neighbour)-[edge:AFFECTS]-(other)
  WHERE abs(edge.d) >= floor AND other <> center AND edge.shard IN $visible
  WITH edge, CASE WHEN abs(edge.d) < reach THEN abs(edge.d) ELSE reach END AS strength
  // An edge joining two neighbours comes once from each, and its stronger path counts. Each edge has at most two
  // rows, so the 2N strongest rows hold the strongest row of each of the N strongest edges: only they are grouped.
  ORDER BY strength DESC, elementId(edge) LIMIT 2 * $limit
  WITH edge, max(strength) AS strength
  ORDER BY strength DESC, elementId(edge) LIMIT $limit
  RETURN collect({edge: edge, strength: strength, hop: 2}) AS second
}
UNWIND first + second AS item
WITH item ORDER BY item.strength DESC, item.hop, elementId(item.edge) LIMIT $limit
RETURN item.hop AS hop, item.edge.run AS run, startNode(item.edge).uid AS source, endNode(item.edge).uid AS target,
       item.edge.d AS d, item.edge.sign AS sign, item.strength AS strength
ORDER BY strength DESC, hop, source, target, run
