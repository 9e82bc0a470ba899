"""Output files written safely: atomically, never through a link planted at the target, errors in one line."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from atlas.errors import AtlasError


def write_atomically(path: str | Path, payload: bytes | Callable[[BinaryIO], object], *, sync: bool = False) -> Path:
    """Write ``payload`` (bytes, or a function writing to a binary file) to ``path`` and return the path.

    The bytes go to a temporary file in the same directory, which is then renamed over ``path``: a reader sees the
    old file or the whole new one, and a symbolic link planted at ``path`` is replaced, never followed. ``sync``
    flushes the data to disk before the rename (files other processes rely on after a crash). A place that cannot
    be written (a missing permission, a directory of that name) is an AtlasError naming it.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise AtlasError(f"{path}: cannot write there ({error.strerror or error})") from error
    try:
        with os.fdopen(handle, "wb") as out:
            if isinstance(payload, bytes):
                out.write(payload)
            else:
                payload(out)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise AtlasError(f"{path}: cannot write there ({error.strerror or error})") from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
