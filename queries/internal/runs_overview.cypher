// purpose: Every run in the graph with its kind, model, SAE set, layers, status and recorded edge count.
// returns: id, kind, model, sae, source_layer, downstream_layers, n_cells, status, edge_count, created_at
MATCH (run:Run)
RETURN run.id AS id, run.kind AS kind, run.model AS model, run.sae AS sae, run.source_layer AS source_layer,
       run.downstream_layers AS downstream_layers, run.n_cells AS n_cells, run.status AS status,
       run.edge_count AS edge_count, toString(run.created_at) AS created_at
ORDER BY id
