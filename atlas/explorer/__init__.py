"""The atlas explorer: a read-only web application and JSON API over the atlas (`atlas serve`).

Presentation only: it reads through :mod:`atlas.analysis.browse` (library queries, read transactions, the shard
visibility fence) and never imports torch.
"""
