// purpose: Steering results of steering runs, with each feature's out-degree in the given trace runs (hub-ness).
// param runs: str[] — the steering runs
// param trace_runs: str[] — the trace runs whose AFFECTS edges count toward out_degree
// returns: run, uid, layer, feature, alpha, switch_d, n_cells, fraction_positive, mean_ds, std_ds, top_genes, top_up, top_down, out_degree
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence).
CALL () { MATCH (run:Run) UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (s:Steering)-[:STEERS]->(f:Feature) WHERE s.run IN $runs
OPTIONAL MATCH (f)-[e:AFFECTS]->() WHERE e.run IN $trace_runs AND e.shard IN visible
WITH s, f, count(e) AS out_degree
RETURN s.run AS run, f.uid AS uid, f.layer AS layer, f.index AS feature, s.alpha AS alpha, s.switch_d AS switch_d,
       s.n_cells AS n_cells, s.fraction_positive AS fraction_positive, s.mean_ds AS mean_ds,
       properties(s).std_ds AS std_ds, properties(s).top_genes AS top_genes, s.top_up AS top_up,
       s.top_down AS top_down, out_degree
ORDER BY run, layer, feature, alpha
