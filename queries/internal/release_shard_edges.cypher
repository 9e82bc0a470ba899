// purpose: The edges of one visible shard of a run (nothing when the shard is not visible: the shard fence).
// param run: str — the run id
// param key: int — the shard key (loaders.schema.shard_key of the run id and the shard file)
// returns: source_feature, target_layer, target_feature, properties (every AFFECTS property)
MATCH (run:Run {id: $run})
WHERE $key IN run.visible
MATCH (source:Feature)-[edge:AFFECTS {shard: $key}]->(target:Feature)
RETURN source.index AS source_feature, target.layer AS target_layer, target.index AS target_feature,
       properties(edge) AS properties
