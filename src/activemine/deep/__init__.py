"""Networks as models: a scikit-learn compatible classifier around a torch module.

The one place activemine imports torch (the ``torch`` extra); nothing that
``import activemine`` or ``activemine --help`` loads imports this package.
Strategies, committees, the dirty-data step and campaigns see a network only
through :class:`TorchClassifier`'s ``fit``, ``predict_proba``, ``embed`` and,
where a network offers more, ``snapshot`` (an early-epoch weak model) and
``predict_proba_passes`` (dropout passes as a committee).

Inputs are plain float32 feature arrays ``(n, C*H*W)``: pixel values in
``[0, 1]``, each image flattened channel-first, every image of one size.
"""

from activemine.deep.classifier import TorchClassifier, check_device, infer_input_shape, resolve_device
from activemine.deep.networks import small_cnn

__all__ = ["TorchClassifier", "check_device", "infer_input_shape", "resolve_device", "small_cnn"]
