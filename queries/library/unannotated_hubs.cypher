// purpose: Hubs without any annotation, with their top genes (reads the hub classes written by `atlas analyze hubs --run RUN --write`).
// param scope: str — the scope the hubs were written for: the run id (runs joined by '+', '@L6,11' when layers were given)
// param genes: int = 5 — how many top genes per feature
// param limit: int = 50 — how many hubs
// returns: uid, layer, out_degree, pagerank, betweenness, hub_rank, top_genes
MATCH (feature:Feature)
WHERE feature.hub_scope = $scope AND feature.hub = true
  AND NOT coalesce(feature.annotated, false) AND NOT EXISTS { (feature)-[:ENRICHED_IN]->(:Term) }
WITH feature ORDER BY feature.hub_rank LIMIT $limit
RETURN feature.uid AS uid, feature.layer AS layer, feature.hub_degree AS out_degree,
       feature.hub_pagerank AS pagerank, feature.hub_betweenness AS betweenness, feature.hub_rank AS hub_rank,
       COLLECT {
         MATCH (feature)-[top:TOP_GENE]->(gene:Gene)
         WITH gene, top ORDER BY top.rank LIMIT $genes
         RETURN coalesce(gene.symbol, gene.id)
       } AS top_genes
ORDER BY hub_rank
