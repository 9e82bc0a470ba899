// purpose: How many nodes the database holds (a dump restore refuses a database that is not empty).
// returns: nodes
MATCH (node) RETURN count(node) AS nodes
