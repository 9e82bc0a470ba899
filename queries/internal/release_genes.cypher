// purpose: Every Gene node with all its properties, by id.
// returns: properties
MATCH (gene:Gene)
RETURN properties(gene) AS properties
ORDER BY gene.id
