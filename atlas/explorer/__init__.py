"""The atlas explorer: a read-only web application and JSON API over the atlas (`atlas serve`).

Presentation only: it reads through :mod:`atlas.analysis.browse` (library queries, read transactions, the shard
visibility fence) and never imports torch.
"""

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def explorer_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The address people open for an explorer bound to ``host:port``."""
    return f"http://{host}:{port}/"
