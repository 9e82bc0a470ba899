// purpose: Search features by uid or label, genes by symbol or id, terms by id or name (case-insensitive parts).
// param q: str — the text to look for
// param limit: int — at most this many of each kind
// returns: features, genes, terms (lists of maps)
WITH toLower($q) AS text
CALL (text) {
  MATCH (feature:Feature)
  WHERE toLower(feature.uid) CONTAINS text OR toLower(feature.label) CONTAINS text
  WITH feature ORDER BY feature.layer, feature.uid LIMIT $limit
  RETURN collect({uid: feature.uid, layer: feature.layer, label: feature.label}) AS features
}
CALL (text) {
  MATCH (gene:Gene)
  WHERE toLower(gene.symbol) CONTAINS text OR toLower(gene.id) CONTAINS text
  WITH gene ORDER BY toLower(gene.symbol) <> text AND toLower(gene.id) <> text, gene.symbol, gene.id LIMIT $limit
  RETURN collect({id: gene.id, symbol: gene.symbol}) AS genes
}
CALL (text) {
  MATCH (term:Term)
  WHERE toLower(term.id) CONTAINS text OR toLower(term.name) CONTAINS text
  WITH term ORDER BY toLower(term.id) <> text, term.name, term.id LIMIT $limit
  RETURN collect({id: term.id, name: term.name, source: term.source}) AS terms
}
RETURN features, genes, terms
