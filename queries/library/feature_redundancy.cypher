// purpose: Is this feature redundant? The ablated feature sets that contain it, with redundancy and additivity.
// param uid: str — the feature uid, e.g. geneformer/biosae/L05/F0898
// param run: str = null — only this ablation run (all runs when omitted)
// returns: interaction, run, definition (study or whole-set; whole-set where not recorded), selection, term, order, members, n_targets, median_redundancy, median_interaction, fraction_subadditive, fraction_superadditive, mean_abs_interaction
MATCH (i:Interaction)-[:HAS_MEMBER]->(:Feature {uid: $uid})
WHERE $run IS NULL OR i.run = $run
RETURN i.id AS interaction, i.run AS run, coalesce(properties(i).definition, 'whole-set') AS definition,
       i.selection AS selection, properties(i).term AS term, i.order AS order,
       i.members AS members, i.n_targets AS n_targets, i.median_redundancy AS median_redundancy,
       properties(i).median_interaction AS median_interaction,
       i.fraction_subadditive AS fraction_subadditive, i.fraction_superadditive AS fraction_superadditive,
       i.mean_abs_interaction AS mean_abs_interaction
ORDER BY order, median_redundancy
