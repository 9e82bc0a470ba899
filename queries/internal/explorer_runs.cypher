// purpose: Every run in the graph with what the explorer's overview shows.
// returns: id, kind, model, sae, source_layer, downstream_layers, n_cells, edge_count, status, created_at, visible_shards, shards,
//          calibrated (its edges carry perm_p/perm_q: `atlas trace calibrate`)
MATCH (run:Run)
RETURN run.id AS id, run.kind AS kind, run.model AS model, run.sae AS sae, run.source_layer AS source_layer,
       run.downstream_layers AS downstream_layers, run.n_cells AS n_cells, run.edge_count AS edge_count,
       run.status AS status, toString(run.created_at) AS created_at, size(coalesce(run.visible, [])) AS visible_shards,
       size(coalesce(run.shards, [])) AS shards, run.calibration_n_perm IS NOT NULL AS calibrated
ORDER BY id
