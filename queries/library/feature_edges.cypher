// purpose: A feature's strongest outgoing edges by |Cohen's d|.
// param uid: str — the feature uid, e.g. geneformer/biosae/L05/F0898
// param run: str = null — only edges of this run (default every run)
// param limit: int = 20 — how many edges
// returns: run, target, target_layer, target_label, d, mean, consistency, n, q, perm_p, perm_q, sign
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence).
CALL () { MATCH (run:Run) UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (:Feature {uid: $uid})-[edge:AFFECTS]->(target:Feature)
WHERE edge.shard IN visible AND ($run IS NULL OR edge.run = $run)
RETURN edge.run AS run, target.uid AS target, target.layer AS target_layer, target.label AS target_label,
       edge.d AS d, edge.mean AS mean, edge.consistency AS consistency, edge.n AS n, edge.q AS q,
       edge.perm_p AS perm_p, edge.perm_q AS perm_q, edge.sign AS sign
ORDER BY abs(edge.d) DESC, target
LIMIT $limit
