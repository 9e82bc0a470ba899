// purpose: One page of a feature's edges in one direction, filtered and sorted, with the count of all that match.
// param uid: str — the feature uid
// param visible: int[] — visible shard keys of the runs in view (explorer_visible), read once per request
// param direction: str — out (downstream: this feature is the source) or in (upstream)
// param run: str = null — only this run
// param layer: int = null — only neighbours of this layer
// param sign: str = null — excitatory or inhibitory
// param min_abs_d: float = null — |d| at least this
// param max_q: float = null — the q column at most this (edges without it are dropped when set)
// param q_column: str — the column max_q bounds: q (BH of p) or perm_q (BH of the permutation p)
// param sort: str — abs_d, d, mean, consistency, n, p, q or perm_q (ties: neighbour uid, then run)
// param descending: bool — sort order
// param limit: int — page size
// param offset: int — rows to skip
// returns: total, edges (list of {run, neighbour, neighbour_layer, neighbour_label, sign, d, mean, std, consistency, n, p, q,
//          perm_p, perm_q}); perm_p/perm_q are null until the run is calibrated (`atlas trace calibrate`)
MATCH (feature:Feature {uid: $uid})
CALL (feature) {
  MATCH (feature)-[edge:AFFECTS]->(neighbour:Feature)
  WHERE $direction = 'out' AND edge.shard IN $visible
  RETURN edge, neighbour
  UNION ALL
  MATCH (feature)<-[edge:AFFECTS]-(neighbour:Feature)
  WHERE $direction = 'in' AND edge.shard IN $visible
  RETURN edge, neighbour
}
WITH edge, neighbour
WHERE ($run IS NULL OR edge.run = $run) AND ($layer IS NULL OR neighbour.layer = $layer)
  AND ($sign IS NULL OR edge.sign = $sign) AND ($min_abs_d IS NULL OR abs(edge.d) >= $min_abs_d)
  AND ($max_q IS NULL OR CASE $q_column WHEN 'perm_q' THEN edge.perm_q ELSE edge.q END <= $max_q)
WITH edge, neighbour,
     CASE $sort WHEN 'abs_d' THEN abs(edge.d) WHEN 'd' THEN edge.d WHEN 'mean' THEN edge.mean
                WHEN 'consistency' THEN edge.consistency WHEN 'n' THEN toFloat(edge.n) WHEN 'p' THEN edge.p
                WHEN 'q' THEN edge.q WHEN 'perm_q' THEN edge.perm_q END AS key
ORDER BY CASE WHEN $descending THEN -key ELSE key END, neighbour.uid, edge.run
WITH collect({run: edge.run, neighbour: neighbour.uid, neighbour_layer: neighbour.layer,
              neighbour_label: neighbour.label, sign: edge.sign, d: edge.d, mean: edge.mean, std: edge.std,
              consistency: edge.consistency, n: edge.n, p: edge.p, q: edge.q, perm_p: edge.perm_p,
              perm_q: edge.perm_q}) AS rows
RETURN size(rows) AS total, rows[$offset..$offset + $limit] AS edges
