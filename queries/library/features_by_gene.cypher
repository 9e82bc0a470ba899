// purpose: Features whose top genes include a gene (by symbol or Ensembl id), best-ranked first.
// param gene: str — gene symbol (e.g. CD3E) or id (e.g. ENSG00000198851)
// param limit: int = 50 — how many features
// returns: uid, layer, label, gene, rank, weight
MATCH (gene:Gene) WHERE gene.symbol = $gene OR gene.id = $gene
MATCH (feature:Feature)-[top:TOP_GENE]->(gene)
RETURN feature.uid AS uid, feature.layer AS layer, feature.label AS label, coalesce(gene.symbol, gene.id) AS gene,
       top.rank AS rank, top.weight AS weight
ORDER BY rank, weight DESC, uid
LIMIT $limit
