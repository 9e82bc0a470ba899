// purpose: How many nodes the database holds (an offline import refuses a non-empty database unless forced).
// returns: nodes
MATCH (n)
RETURN count(n) AS nodes
