// purpose: Feature sets of ablation runs with their summaries (report and analyses).
// param runs: str[] — the ablation runs
// returns: run, set_id, selection, definition (whole-set where not recorded), term, order, members, n_cells, n_targets, median_redundancy, median_interaction, median_marginal, fraction_subadditive, fraction_additive, fraction_superadditive, mean_abs_interaction, redundancy_by_order
MATCH (i:Interaction) WHERE i.run IN $runs
RETURN i.run AS run, i.id AS set_id, i.selection AS selection,
       coalesce(properties(i).definition, 'whole-set') AS definition, properties(i).term AS term, i.order AS order,
       i.members AS members, i.n_cells AS n_cells, i.n_targets AS n_targets,
       i.median_redundancy AS median_redundancy, properties(i).median_interaction AS median_interaction,
       properties(i).median_marginal AS median_marginal, i.fraction_subadditive AS fraction_subadditive,
       i.fraction_additive AS fraction_additive, i.fraction_superadditive AS fraction_superadditive,
       i.mean_abs_interaction AS mean_abs_interaction, i.redundancy_by_order AS redundancy_by_order
ORDER BY run, set_id
