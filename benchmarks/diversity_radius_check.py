"""How many rows a radius suppresses on the clean Fashion-MNIST pool (seed 0), and what it does to TPR.

    python benchmarks/diversity_radius_check.py > benchmarks/results/diversity_radius_check/output.txt

hw against hw + near-duplicates at fixed radii (0.34 = 0.15x the median neighbour distance, 0.1, 0.001),
the setting ``clean`` of benchmarks/diversity.py, one seed, one model per evaluation; prints each run's
TPR at 1% FPR, AUC and diversity report (rows suppressed).
"""

import json

from activemine.experiments.runner import ExperimentConfig, run_experiment

config = ExperimentConfig(
    dataset="fashion-mnist",
    task="binary:6",
    labeled_size=10_000,
    pool_size=30_000,
    budget=3_000,
    strategies=["hw", "hw+near-duplicates:0.34", "hw+near-duplicates:0.1", "hw+near-duplicates:0.001"],
    seeds=[0],
    eval_repeats=1,
    full_seeds=0,
    duplicates=None,
    clusters=1000,
    model="lightgbm",
)
for r in run_experiment(config)["runs"]:
    print(r["strategy"], r["tpr_at_fpr"], r["auc"], json.dumps(r.get("diversity")), flush=True)
