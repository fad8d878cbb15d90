"""Budget: when to stop labeling (stopping criteria), how many labels a target needs (forecast), and the report of both.

stopping.py    stopping criteria over the rounds so far (kappa, uncertainty, plateau, max)
forecast.py    a learning curve fitted to (labels, metric) points and extrapolated
report.py      where each criterion would have stopped a multi-round experiment
"""

from __future__ import annotations

from activemine import lazy_exports

# public name -> the module of this package that defines it; imported on first use, so importing one
# module of the package does not import the others
_EXPORTS = {
    "choose_stop_set": "stopping",
    "cohen_kappa": "stopping",
    "consecutive_kappas": "stopping",
    "CRITERIA": "stopping",
    "default_criteria": "stopping",
    "DEFAULT_STOP_SET_SIZE": "report",
    "first_stop": "stopping",
    "fit_learning_curve": "forecast",
    "Forecast": "forecast",
    "forecast_labels": "forecast",
    "forecast_metric": "forecast",
    "KappaStop": "stopping",
    "LearningCurve": "forecast",
    "mark_stop_points": "report",
    "MaxStop": "stopping",
    "MIN_POINTS": "forecast",
    "normalized_uncertainty": "stopping",
    "PlateauStop": "stopping",
    "refit_kappas": "stopping",
    "RefitKappaStop": "stopping",
    "RoundRecord": "stopping",
    "RunRecorder": "report",
    "STOP_SET_SOURCES": "report",
    "StopDecision": "stopping",
    "stopping_markdown": "report",
    "StopSettings": "report",
    "UncertaintyStop": "stopping",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
