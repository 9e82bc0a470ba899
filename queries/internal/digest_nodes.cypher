// purpose: Every node of the graph with its labels and properties (to fingerprint the graph's content).
// returns: labels, properties
MATCH (node)
RETURN labels(node) AS labels, properties(node) AS properties
