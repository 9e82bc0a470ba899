// purpose: A gene (by id, or by symbol when no id matches) with the features whose top genes include it and its terms.
// param id: str — gene id (e.g. ENSG00000198851) or symbol (e.g. CD3E)
// param limit: int — at most this many features
// returns: id, symbol, features (list of {uid, layer, label, rank, weight}), terms (list of {id, name, source})
OPTIONAL MATCH (byId:Gene {id: $id})
CALL (byId) {
  OPTIONAL MATCH (bySymbol:Gene) WHERE byId IS NULL AND bySymbol.symbol = $id
  RETURN bySymbol ORDER BY bySymbol.id LIMIT 1
}
WITH coalesce(byId, bySymbol) AS gene WHERE gene IS NOT NULL
RETURN gene.id AS id, gene.symbol AS symbol,
       COLLECT {
         MATCH (feature:Feature)-[top:TOP_GENE]->(gene)
         WITH feature, top ORDER BY top.rank, top.weight DESC, feature.uid LIMIT $limit
         RETURN {uid: feature.uid, layer: feature.layer, label: feature.label, rank: top.rank, weight: top.weight}
       } AS features,
       COLLECT {
         MATCH (gene)-[:MEMBER_OF]->(term:Term)
         WITH term ORDER BY term.id LIMIT $limit
         RETURN {id: term.id, name: term.name, source: term.source}
       } AS terms
