// purpose: The first genes (by rank) of some features, to start annotating them.
// param uids: str[] — feature uids
// param genes: int — genes per feature
// returns: uid, top_genes
UNWIND $uids AS uid
MATCH (feature:Feature {uid: uid})
RETURN uid, COLLECT {
  MATCH (feature)-[top:TOP_GENE]->(gene:Gene)
  WITH gene, top ORDER BY top.rank LIMIT $genes
  RETURN coalesce(gene.symbol, gene.id)
} AS top_genes
