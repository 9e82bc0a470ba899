// purpose: How many nodes the database holds (an offline import or a dump restore refuses one unless forced).
// returns: nodes
MATCH (n)
RETURN count(n) AS nodes
