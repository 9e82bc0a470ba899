// purpose: One feature with its annotation terms, top genes and steering results (the feature document's node part).
// param uid: str — the feature uid
// returns: uid, model, sae, layer, index, label, activation_freq, annotated, hub, terms, top_genes, steering
MATCH (feature:Feature {uid: $uid})
RETURN feature.uid AS uid, feature.model AS model, feature.sae AS sae, feature.layer AS layer,
       feature.index AS index, feature.label AS label, feature.activation_freq AS activation_freq,
       coalesce(feature.annotated, false) OR EXISTS { (feature)-[:ENRICHED_IN]->(:Term) } AS annotated,
       COLLECT {
         MATCH (feature)-[enriched:ENRICHED_IN]->(term:Term)
         WITH term, enriched ORDER BY enriched.p_adj, term.id
         RETURN {id: term.id, name: term.name, source: term.source, p_adj: enriched.p_adj}
       } AS terms,
       COLLECT {
         MATCH (feature)-[top:TOP_GENE]->(gene:Gene)
         WITH gene, top ORDER BY top.rank
         RETURN {id: gene.id, symbol: gene.symbol, rank: top.rank, weight: top.weight}
       } AS top_genes,
       COLLECT {
         MATCH (steering:Steering)-[:STEERS]->(feature)
         WITH steering ORDER BY steering.run, steering.alpha
         RETURN {run: steering.run, alpha: steering.alpha, mean_ds: steering.mean_ds,
                 fraction_positive: steering.fraction_positive, n_cells: steering.n_cells,
                 top_up: steering.top_up, top_down: steering.top_down}
       } AS steering
