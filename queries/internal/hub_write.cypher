// purpose: Write hub centralities and classes of one scope onto the feature nodes (a feature keeps the last scope written).
// param scope: str — the scope key
// param rows: map[] — {uid, hub, hub_rank, out_degree, in_degree, pagerank, betweenness}
// returns: nothing
UNWIND $rows AS row
MATCH (feature:Feature {uid: row.uid})
SET feature.hub_scope = $scope, feature.hub = row.hub, feature.hub_rank = row.hub_rank,
    feature.hub_degree = row.out_degree, feature.hub_in_degree = row.in_degree,
    feature.hub_pagerank = row.pagerank, feature.hub_betweenness = row.betweenness
