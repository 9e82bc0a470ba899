"""The one range-list parser: feature indices and layer numbers as typed on the command line."""

import pytest

from atlas.errors import AtlasError
from atlas.ranges import parse_ranges


def test_ranges_are_expanded_sorted_and_unique():
    assert parse_ranges("7, 3,10-12,11") == [3, 7, 10, 11, 12]


def test_a_bad_feature_list_is_named_as_features():
    with pytest.raises(AtlasError, match=r"^features '3,x': .*3,7,10-12"):
        parse_ranges("3,x", "features")


def test_a_bad_layer_list_is_named_as_layers():
    with pytest.raises(AtlasError, match=r"^layers '6,eleven': .*6,11,17"):
        parse_ranges("6,eleven", "layers")


def test_an_empty_list_is_refused():
    with pytest.raises(AtlasError, match="no layers"):
        parse_ranges(" , ", "layers")
