// purpose: The index behind the fast hub queries: features by (hub_scope, hub), created before the first write-back.
// returns: nothing
CREATE INDEX feature_hub_scope IF NOT EXISTS FOR (feature:Feature) ON (feature.hub_scope, feature.hub)
