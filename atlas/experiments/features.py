"""Feature references (layer, index) and feature sets, with the text forms the CLI accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from atlas.errors import AtlasError

_REF = re.compile(r"^\s*L?(\d+)\s*[:/]\s*F?(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class FeatureRef:
    """One SAE feature: its layer and its index in that layer's SAE."""

    layer: int
    index: int

    def __str__(self) -> str:
        return f"L{self.layer:02d}:F{self.index:04d}"


@dataclass(frozen=True)
class FeatureSet:
    """Features ablated together; ``selection`` says how the set was chosen, ``term`` the shared pathway if any."""

    set_id: str
    members: tuple[FeatureRef, ...]
    selection: str = "explicit"
    term: str | None = None

    @property
    def order(self) -> int:
        """How many features the set holds."""
        return len(self.members)


def parse_feature(text: str) -> FeatureRef:
    """``5:12``, ``L5:F12`` or ``L05/F0012`` -> FeatureRef(5, 12)."""
    match = _REF.match(text)
    if match is None:
        raise AtlasError(f"feature {text!r} is not LAYER:INDEX (e.g. 5:898 or L05:F0898)")
    return FeatureRef(int(match.group(1)), int(match.group(2)))


def parse_feature_set(text: str, set_id: str) -> FeatureSet:
    """A comma-separated explicit set such as ``5:12,5:40,8:3``; members must be distinct."""
    members = tuple(parse_feature(item) for item in text.split(",") if item.strip())
    if not members:
        raise AtlasError(f"feature set {text!r} is empty")
    if len(set(members)) != len(members):
        raise AtlasError(f"feature set {text!r} names a feature twice")
    return FeatureSet(set_id, members)
