// purpose: Remove the MEMBER_OF links of gene sets whose new version no longer lists those genes.
// param rows: map[] — {id: term id of the gene set, genes: gene ids of its members}
// returns: nothing
UNWIND $rows AS row
MATCH (term:Term {id: row.id})<-[member:MEMBER_OF]-(gene:Gene)
WHERE NOT gene.id IN row.genes
DELETE member
