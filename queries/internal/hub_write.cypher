// purpose: Write hub centralities and classes of one scope onto the feature nodes (a feature keeps the last scope written).
// param scope: str — the scope key
// param uid: str[] — feature uids; the other lists hold one value per uid, in the same order
// param hub: bool[] — hub class
// param hub_rank: int[] — rank by the hub rule's measure
// param out_degree: int[] — out-degree
// param in_degree: int[] — in-degree
// param pagerank: float[] — PageRank
// param betweenness: float[] — betweenness (null when skipped)
// returns: nothing
// Parallel lists rather than a list of maps: a little less to encode and decode per feature.
UNWIND range(0, size($uid) - 1) AS i
MATCH (feature:Feature {uid: $uid[i]})
SET feature.hub_scope = $scope, feature.hub = $hub[i], feature.hub_rank = $hub_rank[i],
    feature.hub_degree = $out_degree[i], feature.hub_in_degree = $in_degree[i],
    feature.hub_pagerank = $pagerank[i], feature.hub_betweenness = $betweenness[i]
