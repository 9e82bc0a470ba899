// purpose: Remove the hub classes written for one scope (before writing them again).
// param scope: str — the scope key
// returns: nothing
MATCH (feature:Feature) WHERE feature.hub_scope = $scope
REMOVE feature.hub_scope, feature.hub, feature.hub_rank, feature.hub_degree, feature.hub_in_degree,
       feature.hub_pagerank, feature.hub_betweenness
