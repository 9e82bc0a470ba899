"""Everything that writes into Neo4j: the schema, the online and offline edge loaders, annotation loaders.

Loaders never import torch: a laptop with no GPU stack loads runs traced elsewhere.
"""
