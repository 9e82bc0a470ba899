"""Atlas releases: publish runs, annotations and experiment results as one versioned directory, check one, load one.

:func:`create_release` reads the graph (read transactions, visible shards only), :func:`verify_release` checks a
release's files against its ``release.json``, :func:`load_release` builds an atlas from it (online loader, offline
import or dump restore). The layout is :mod:`atlas.releaseformat`.
"""

from atlas.release.create import create_release
from atlas.release.load import load_release
from atlas.release.verify import verify_release

__all__ = ["create_release", "load_release", "verify_release"]
