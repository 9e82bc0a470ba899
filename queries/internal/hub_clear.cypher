// purpose: Remove the hub classes written for one scope from the features not in its new hub table.
// param scope: str — the scope key
// param keep: str[] — uids of the features about to be written again (their properties are overwritten instead)
// returns: nothing
MATCH (feature:Feature) WHERE feature.hub_scope = $scope AND NOT feature.uid IN $keep
REMOVE feature.hub_scope, feature.hub, feature.hub_rank, feature.hub_degree, feature.hub_in_degree,
       feature.hub_pagerank, feature.hub_betweenness
