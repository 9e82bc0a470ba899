"""Bias, tail fit, attenuation and run comparison, each checked against scipy / powerlaw / pandas on known edges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import powerlaw
import pytest
from scipy import stats

from atlas.analysis import attenuation as attenuation_analysis
from atlas.analysis import bias as bias_analysis
from atlas.analysis import compare as compare_analysis
from atlas.analysis import heavy_tail
from atlas.analysis.hubs import HubRule
from atlas.analysis.projection import projection_names
from atlas.analysis.scope import resolve_scope
from atlas.errors import AtlasError
from tests.graphs import heavy_tailed_run, write_run

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def loaded(graph):
    """A 150-source heavy-tailed run and a 'selective' run: a subset of its sources and of their edges."""
    from tests.conftest import wipe

    wipe(graph)
    full = heavy_tailed_run(graph, "exhaustive", np.random.default_rng(3), sources=150, targets=80,
                            downstream_layers=(6, 11, 17))
    chosen = full.edges["source"].drop_duplicates().iloc[:40]
    selective = full.edges[full.edges["source"].isin(chosen)].sample(frac=0.7, random_state=2)
    write_run(graph, "selective", 5, [6, 11, 17], selective)
    return full, selective


def source_degrees(full) -> pd.DataFrame:
    """Out-degree (0 when the feature has no edge) of every source feature, with annotation and frequency."""
    sources = full.features[full.features["layer"] == 5].set_index("uid")
    sources["out_degree"] = full.edges.groupby("source").size().reindex(sources.index).fillna(0).astype(int)
    return sources.reset_index()


def test_bias_fisher_and_spearman_equal_scipy(loaded, graph):
    full, _ = loaded
    result = bias_analysis.bias(graph, resolve_scope(graph, ["exhaustive"]), top=15)
    sources = source_degrees(full).sort_values(["out_degree", "uid"], ascending=[False, True])
    top = sources["uid"].iloc[:15]
    in_top = sources["uid"].isin(top)
    annotated = sources["annotated"]
    table = [[(in_top & annotated).sum(), (in_top & ~annotated).sum()],
             [(~in_top & annotated).sum(), (~in_top & ~annotated).sum()]]
    odds, p_value = stats.fisher_exact(table)
    tests = result.table.set_index("test")
    fisher = tests.loc["fisher: top 15 by out-degree"]
    assert fisher["statistic"] == pytest.approx(odds) and fisher["p_value"] == pytest.approx(p_value)
    assert fisher["rate_all"] == pytest.approx(annotated.mean())
    rho, rho_p = stats.spearmanr(sources["out_degree"], sources["activation_freq"])
    spearman = tests.loc["spearman: out-degree vs activation frequency"]
    assert spearman["statistic"] == pytest.approx(rho) and spearman["p_value"] == pytest.approx(rho_p)
    assert result.summary["features"] == len(sources)


def test_bias_frequency_adjusted_tests_equal_an_independent_regression(loaded, graph):
    full, _ = loaded
    result = bias_analysis.bias(graph, resolve_scope(graph, ["exhaustive"]), top=15)
    sources = source_degrees(full).sort_values(["out_degree", "uid"], ascending=[False, True])
    log_freq = np.log(sources["activation_freq"].to_numpy())
    fit = stats.linregress(log_freq, np.log1p(sources["out_degree"].to_numpy()))
    residual = np.log1p(sources["out_degree"].to_numpy()) - (fit.intercept + fit.slope * log_freq)
    top = sources["uid"].to_numpy()[np.argsort(-residual, kind="stable")[:15]]
    in_top, annotated = sources["uid"].isin(top), sources["annotated"]
    _, p_value = stats.fisher_exact([[(in_top & annotated).sum(), (in_top & ~annotated).sum()],
                                     [(~in_top & annotated).sum(), (~in_top & ~annotated).sum()]])
    tests = result.table.set_index("test")
    assert tests.loc["fisher: top 15 by frequency-adjusted degree", "p_value"] == pytest.approx(p_value)
    annotation_fit = stats.linregress(log_freq, annotated.to_numpy(dtype=float))
    annotation_residual = annotated.to_numpy(dtype=float) - (annotation_fit.intercept + annotation_fit.slope * log_freq)
    partial = stats.pearsonr(annotation_residual, residual).statistic
    assert tests.loc["partial correlation: annotated ~ log degree | log frequency", "statistic"] == \
        pytest.approx(partial, abs=1e-9)


def test_bias_population_is_active_features_plus_every_feature_with_edges(loaded, graph):
    full, _ = loaded
    population = bias_analysis.population(graph, resolve_scope(graph, ["exhaustive"]), min_activation_freq=0.1)
    sources = source_degrees(full)
    expected = sources[(sources["activation_freq"] >= 0.1) | (sources["out_degree"] > 0)]
    assert set(population["uid"]) == set(expected["uid"])
    assert population.set_index("uid")["out_degree"].to_dict() == expected.set_index("uid")["out_degree"].to_dict()


def test_tail_fit_equals_the_powerlaw_package_called_directly(loaded, graph):
    full, _ = loaded
    result = heavy_tail.heavy_tail(graph, resolve_scope(graph, ["exhaustive"]), direction="out")
    degrees = full.edges.groupby("source").size().to_numpy()
    direct = powerlaw.Fit(degrees, discrete=True, verbose=False)
    assert result.summary["alpha"] == pytest.approx(direct.power_law.alpha)
    assert result.summary["xmin"] == direct.xmin
    assert result.summary["alpha_standard_error"] == pytest.approx(direct.power_law.standard_err)
    assert result.summary["tail_points"] == direct.n_tail
    comparisons = result.table.set_index("alternative")
    assert list(comparisons.index) == ["lognormal", "exponential", "stretched_exponential", "truncated_power_law"]
    for alternative, row in comparisons.iterrows():
        ratio, p_value = direct.distribution_compare("power_law", alternative, normalized_ratio=True)
        assert row["loglikelihood_ratio"] == pytest.approx(ratio, rel=1e-6)
        assert row["p_value"] == pytest.approx(p_value, rel=1e-6)
    assert projection_names(graph) == []


def test_tail_fit_with_a_fixed_xmin_equals_the_package_with_that_xmin(loaded, graph):
    full, _ = loaded
    result = heavy_tail.heavy_tail(graph, resolve_scope(graph, ["exhaustive"]), xmin=10)
    direct = powerlaw.Fit(full.edges.groupby("source").size().to_numpy(), discrete=True, xmin=10, verbose=False)
    assert result.summary["xmin"] == 10
    assert result.summary["alpha"] == pytest.approx(direct.power_law.alpha)
    assert result.summary["tail_points"] == direct.n_tail


def test_attenuation_counts_and_decay_equal_pandas(loaded, graph):
    full, _ = loaded
    result = attenuation_analysis.attenuation(graph, resolve_scope(graph, ["exhaustive"]))
    counts = full.edges.groupby("target_layer").size()
    assert dict(zip(result.table["layer"], result.table["edges"], strict=True)) == counts.to_dict()
    assert result.summary["farthest_over_nearest"] == pytest.approx(counts.loc[17] / counts.loc[6])
    slope = stats.linregress(np.array([1, 6, 12]), np.log(counts.to_numpy(dtype=float))).slope
    assert result.summary["decay_per_layer"] == pytest.approx(1 - np.exp(slope))


def test_compare_expansion_overlap_and_hubs_equal_pandas(loaded, graph):
    full, selective = loaded
    rule = HubRule(threshold=None, percentile=80)
    result = compare_analysis.compare(graph, "selective", "exhaustive", rule=rule)
    summary = result.summary
    assert summary["expansion_factor"] == pytest.approx(len(full.edges) / len(selective))
    shared = len(selective.merge(full.edges, on=["source", "target"]))
    assert summary["shared_edges"] == shared == len(selective)
    assert summary["jaccard"] == pytest.approx(shared / len(full.edges))
    layers = 3
    sources_a = selective["source"].nunique()
    assert result.table.set_index("run").loc["selective", "density_per_layer"] == pytest.approx(
        len(selective) / (sources_a * layers))
    for column, edges in (("hub_b", full.edges), ("hub_a", selective)):
        degree = edges.groupby("source").size()
        expected = set(degree[degree >= np.percentile(degree, 80)].index)
        assert set(result.tables["hubs"].query(column)["uid"]) == expected


def test_compare_restricted_to_a_layer_and_refuses_the_same_run(loaded, graph):
    full, selective = loaded
    result = compare_analysis.compare(graph, "selective", "exhaustive", layers=[11], rule=HubRule(threshold=5))
    assert result.summary["edges_b"] == (full.edges["target_layer"] == 11).sum()
    assert result.summary["edges_a"] == (selective["target_layer"] == 11).sum()
    with pytest.raises(AtlasError, match="two different runs"):
        compare_analysis.compare(graph, "selective", "selective")
