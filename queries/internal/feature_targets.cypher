// purpose: The downstream targets of some source features within a scope (target overlap of ablated sets).
// param uids: str[] — source feature uids
// param runs: str[] — run ids
// param layers: int[] = null — downstream layers (default all)
// returns: uid, targets
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence).
CALL () { MATCH (run:Run) WHERE run.id IN $runs UNWIND run.visible AS key RETURN collect(key) AS visible }
UNWIND $uids AS uid
MATCH (source:Feature {uid: uid})-[edge:AFFECTS]->(target:Feature)
WHERE edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
RETURN uid, collect(DISTINCT target.uid) AS targets
