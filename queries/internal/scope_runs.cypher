// purpose: The Run nodes of an analysis scope (to validate run ids and read their layers).
// param runs: str[] — run ids
// returns: id, model, sae, source_layer, downstream_layers, calibrated (its edges carry perm_p/perm_q)
MATCH (run:Run) WHERE run.id IN $runs
RETURN run.id AS id, run.model AS model, run.sae AS sae, run.source_layer AS source_layer,
       run.downstream_layers AS downstream_layers, run.calibration_n_perm IS NOT NULL AS calibrated
ORDER BY id
