"""Annotators: agreement, consensus labels, simulated annotators and relabeling (pure numpy; a campaign's side is in activemine.campaign).

agreement.py   agreement (kappa, alpha), consensus labels (vote, Dawid-Skene, model-weighted), annotator quality
simulation.py  simulated annotators: confusion matrices, overlap, labels drawn from them
relabel.py     rank labeled samples for a second opinion; advise relabel or mine
"""

from __future__ import annotations

from activemine import lazy_exports

# public name -> the module of this package that defines it; imported on first use, so importing one
# module of the package does not import the others
_EXPORTS = {
    "add_second_opinions": "simulation",
    "annotator_names": "simulation",
    "annotator_report": "agreement",
    "AnnotatorSpec": "simulation",
    "check_experiment_spec": "simulation",
    "cohen_kappa": "agreement",
    "confusion_matrices": "simulation",
    "consensus": "agreement",
    "CONSENSUS_METHODS": "agreement",
    "ConsensusResult": "agreement",
    "dawid_skene": "agreement",
    "DEFAULT_CONSENSUS": "agreement",
    "experiment_labels": "simulation",
    "flag_annotators": "agreement",
    "hardest_pair": "simulation",
    "krippendorff_alpha": "agreement",
    "label_matrix": "agreement",
    "label_posterior": "relabel",
    "majority_vote": "agreement",
    "model_weighted_consensus": "agreement",
    "pairwise_kappa": "agreement",
    "parse_annotator_spec": "simulation",
    "rank_for_relabel": "relabel",
    "relabel_advice": "relabel",
    "RelabelRanking": "relabel",
    "simulate_labels": "simulation",
    "simulated_training_labels": "simulation",
    "vote_counts": "agreement",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
