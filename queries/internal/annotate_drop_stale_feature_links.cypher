// purpose: Remove the TOP_GENE and ENRICHED_IN links of catalog features that their new catalog no longer lists.
// param rows: map[] — {uid: feature uid, genes: gene ids of its top genes, terms: term ids it is enriched in}
// returns: nothing
UNWIND $rows AS row
MATCH (feature:Feature {uid: row.uid})
CALL (feature, row) {
  MATCH (feature)-[top:TOP_GENE]->(gene:Gene)
  WHERE NOT gene.id IN row.genes
  DELETE top
}
CALL (feature, row) {
  MATCH (feature)-[enriched:ENRICHED_IN]->(term:Term)
  WHERE NOT term.id IN row.terms
  DELETE enriched
}
