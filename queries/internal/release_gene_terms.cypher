// purpose: Every MEMBER_OF link between a gene and a term.
// returns: gene, term
MATCH (gene:Gene)-[:MEMBER_OF]->(term:Term)
RETURN gene.id AS gene, term.id AS term
ORDER BY gene, term
