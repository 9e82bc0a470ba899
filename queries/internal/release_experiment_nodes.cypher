// purpose: Experiment results: every Interaction and Steering node, and the Run nodes of their experiments.
// returns: label (Interaction, Steering or Run), properties
MATCH (node)
WHERE node:Interaction OR node:Steering
   OR (node:Run AND (EXISTS { MATCH (:Interaction {run: node.id}) } OR EXISTS { MATCH (:Steering {run: node.id}) }))
RETURN [label IN labels(node) WHERE label IN ['Interaction', 'Steering', 'Run']][0] AS label,
       properties(node) AS properties
ORDER BY label, node.id
