"""Comma lists of numbers and ranges as people type them (``3,7,10-12``): feature indices, layer numbers."""

from __future__ import annotations

from atlas.errors import AtlasError

EXAMPLES = {"features": "3,7,10-12", "layers": "6,11,17 or 6-17"}


def parse_ranges(text: str, what: str = "features") -> list[int]:
    """``"3,7,10-12"`` -> ``[3, 7, 10, 11, 12]`` (sorted, unique); errors say what was parsed (``features``,
    ``layers``)."""
    numbers: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            first, _, last = part.partition("-")
            numbers.update(range(int(first), int(last or first) + 1))
    except ValueError:
        example = EXAMPLES.get(what, EXAMPLES["features"])
        raise AtlasError(f"{what} {text!r}: use comma-separated numbers and ranges like {example}") from None
    if not numbers:
        raise AtlasError(f"no {what} in {text!r}")
    return sorted(numbers)
