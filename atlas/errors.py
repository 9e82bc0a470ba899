"""The one exception type for problems a user can cause and fix (bad file, bad parameter, server down)."""


class AtlasError(Exception):
    """A user-facing error: the CLI prints its message as one line and exits non-zero."""
