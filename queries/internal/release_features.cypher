// purpose: Every Feature node of some (model, SAE set) pairs with all its properties, by uid.
// param pairs: list — [model, sae] pairs
// returns: properties
MATCH (feature:Feature)
WHERE [feature.model, feature.sae] IN $pairs
RETURN properties(feature) AS properties
ORDER BY feature.uid
