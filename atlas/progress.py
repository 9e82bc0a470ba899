"""Progress from library code: callbacks ``progress(stage, done, total)``; only the CLI draws bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

Item = TypeVar("Item")
StageProgress = Callable[[str, int, "int | None"], None]


def tracked(items: Sequence[Item], stage: str, progress: StageProgress | None) -> Iterator[Item]:
    """Yield ``items``, calling ``progress(stage, done, len(items))`` after each one."""
    for done, item in enumerate(items, start=1):
        yield item
        if progress is not None:
            progress(stage, done, len(items))
