// purpose: Create one batch of a shard's AFFECTS edges (parallel columns), fenced by the shard's write offset.
// param mark: str — id of the shard's ShardLoad mark
// param offset: int — rows of the shard written before this batch; a replayed batch finds another offset and
//   writes nothing (a retry after a commit whose answer was lost never duplicates edges)
// param run: str — the run id
// param key: int — the shard's key (loaders.schema.shard_key), stored on every edge for the visibility fence
// param source: str[] — elementId of each edge's source Feature (resolved once per load: no index seek per edge)
// param target: str[] — elementId of each edge's target Feature
// param d: float[] — Cohen's d, one value per edge (null: no property), as in every column below; sign is derived
//   here from mean by the rule of loaders.runs.edge_signs (not sent: 1.39M strings fewer per reference run)
// param mean: float[] — mean change of the target feature
// param std: float[] — its sample standard deviation
// param consistency: float[] — consistency of the change's sign
// param n: int[] — cells observed
// param p: float[] — t-test p-value
// param q: float[] — Benjamini-Hochberg q-value (null before finalisation)
// param perm_p: float[] — permutation p-value (`atlas trace calibrate`; null, or null throughout: no property)
// param perm_q: float[] — its Benjamini-Hochberg q-value over the live targets (null as perm_p)
// returns: written (edges created); no row when the fence turned the batch away
MATCH (mark:ShardLoad {id: $mark})
WHERE mark.offset = $offset
SET mark.offset = $offset + size($d)
WITH mark
CALL () {
  UNWIND range(0, size($d) - 1) AS i
  MATCH (source:Feature) WHERE elementId(source) = $source[i]
  MATCH (target:Feature) WHERE elementId(target) = $target[i]
  CREATE (source)-[:AFFECTS {run: $run, shard: $key, d: $d[i], mean: $mean[i], std: $std[i],
                             consistency: $consistency[i], n: $n[i], p: $p[i], q: $q[i],
                             perm_p: $perm_p[i], perm_q: $perm_q[i],
                             sign: CASE WHEN $mean[i] > 0 THEN 'excitatory' ELSE 'inhibitory' END}]->(target)
  RETURN count(*) AS written
}
RETURN written
