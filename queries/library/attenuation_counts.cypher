// purpose: Edge counts per run and downstream layer (how the circuit attenuates with depth).
// param runs: str[] — run ids (comma-separated)
// param layers: int[] = null — downstream layers (comma-separated; default all)
// returns: run, layer, edges, excitatory
MATCH ()-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(run)
WHERE edge.run IN $runs AND ($layers IS NULL OR target.layer IN $layers)
RETURN edge.run AS run, target.layer AS layer, count(edge) AS edges,
       count(CASE WHEN edge.sign = 'excitatory' THEN 1 END) AS excitatory
ORDER BY run, layer
