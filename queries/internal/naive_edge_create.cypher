// purpose: Benchmark baseline only: create AFFECTS edges with no exactly-once bookkeeping (one per call, naively).
// param run: str — the run id
// param rows: list[] — [source uid, target uid, d, mean, std, consistency, n, p, q, sign] per edge
// returns: nothing
UNWIND $rows AS row
MATCH (source:Feature {uid: row[0]})
MATCH (target:Feature {uid: row[1]})
CREATE (source)-[:AFFECTS {run: $run, d: row[2], mean: row[3], std: row[4], consistency: row[5], n: row[6],
                           p: row[7], q: row[8], sign: row[9]}]->(target)
