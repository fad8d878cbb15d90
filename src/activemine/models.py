"""Model construction and class-aligned probabilities.

A model is any scikit-learn style classifier with ``fit`` and
``predict_proba``, or one of the built-in names in :data:`MODEL_NAMES`.
Probabilities are always returned aligned to an explicit list of classes, so
models trained on subsets of the data (committee members, weak models) stack.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from activemine.errors import InputError, UnknownLabelError

__all__ = [
    "LIGHTGBM_DEFAULTS",
    "MODEL_NAMES",
    "minority_child_weight",
    "minority_scaled_lgbm",
    "available_cpus",
    "check_n_jobs",
    "make_model",
    "model_from_factory",
    "network_options",
    "predict_proba_aligned",
    "run_parallel",
    "stratified_fraction",
    "threads_per_task",
    "with_image_shape",
]

MODEL_NAMES = ("lightgbm", "hgb", "logreg", "cnn")

#: The default LightGBM. ``reg_lambda`` and ``min_child_weight`` keep it from collapsing on large, separable,
#: imbalanced data: without them (LightGBM's 0 and 1e-3) a leaf of a few pure rows gets a raw score in the
#: tens of thousands, and on a 0.4% class 43,500 rows scored TPR 32 and AUC 0.66 where 2,000 rows scored 100
#: and 1.0 (tests/test_models.py keeps that from coming back). ``min_child_weight`` is a ceiling: each fit
#: lowers it to what the rarest class can reach (:func:`minority_child_weight`), or 2 positives in 2,000 rows
#: never make a split.
LIGHTGBM_DEFAULTS = dict(
    n_estimators=200,
    learning_rate=0.1,
    num_leaves=31,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.5,
    reg_lambda=1.0,
    min_child_weight=1.0,
    verbose=-1,
)


def minority_child_weight(y, sample_weight=None, *, ceiling: float = 1.0) -> float:
    """``min(ceiling, n_min q (1 - q) / 4)``: LightGBM's leaf hessian floor for labels ``y`` ``(n,)`` (weighted
    counts when ``sample_weight`` ``(n,)`` is given); ``n_min`` the rarest class's count, ``q`` its share.

    ``min_child_weight`` bounds the sum of hessians in a leaf, ``p (1 - p)`` per row for the log loss. At the
    start of boosting every row has ``p`` = the class's share ``q``, so a leaf needs about
    ``min_child_weight / (q (1 - q))`` rows: with a floor of 1 and 2 positives among 2,000 rows that is 1,000
    rows, no split can isolate the positives and the model stays constant (AUC 0.50). With this floor a leaf
    holding a quarter of the rarest class reaches it; large data keep the ceiling, and ``reg_lambda`` keeps
    leaves bounded (docs/rare-classes.md has the figures of both cases).
    """
    _, inverse = np.unique(np.asarray(y), return_inverse=True)
    w = np.ones(inverse.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    counts = np.bincount(inverse, weights=w)
    if counts.size < 2 or counts.sum() <= 0:
        return float(ceiling)
    n_min = float(counts.min())
    q = n_min / float(counts.sum())
    return float(min(ceiling, n_min * q * (1.0 - q) / 4.0))


_LGBM_CLASS: list = []


def minority_scaled_lgbm() -> type:
    """The default LightGBM class, ``activemine.models.MinorityScaledLGBM``: an ``LGBMClassifier`` whose
    ``min_child_weight`` is a ceiling, each fit using :func:`minority_child_weight` of its labels
    (``min_child_weight_`` after the fit). Made on first use, so importing this module does not import LightGBM;
    the module's ``__getattr__`` gives it by name, so fitted models pickle."""
    if not _LGBM_CLASS:
        from lightgbm import LGBMClassifier

        def fit(self, X, y, sample_weight=None, **kwargs):
            ceiling = self.min_child_weight
            self.min_child_weight_ = minority_child_weight(y, sample_weight, ceiling=ceiling)
            self.min_child_weight = self.min_child_weight_
            try:
                return LGBMClassifier.fit(self, X, y, sample_weight=sample_weight, **kwargs)
            finally:
                self.min_child_weight = ceiling

        cls = type("MinorityScaledLGBM", (LGBMClassifier,), {"fit": fit, "__module__": __name__})
        cls.__doc__ = minority_scaled_lgbm.__doc__
        _LGBM_CLASS.append(cls)
    return _LGBM_CLASS[0]


def __getattr__(name: str):
    if name == "MinorityScaledLGBM":
        return minority_scaled_lgbm()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, so containers and ``taskset`` count), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def check_n_jobs(n_jobs: int | None) -> int:
    """``n_jobs`` as a positive thread count; None = :func:`available_cpus`."""
    if n_jobs is None:
        return available_cpus()
    if isinstance(n_jobs, bool) or int(n_jobs) != n_jobs or n_jobs < 1:
        raise InputError(f"n_jobs must be a positive integer (threads), got {n_jobs!r}")
    return int(n_jobs)


def make_model(model="lightgbm", *, random_state: int | None = 0, n_jobs: int | None = None):
    """A fresh, unfitted classifier.

    ``model`` is a name from :data:`MODEL_NAMES` or an estimator to clone; the
    clone's ``random_state`` is set when it has one, so seeds reach the model.
    ``n_jobs`` (threads) given explicitly is set on it too; with None a named
    model uses the CPUs available to the process and an estimator keeps its own
    ``n_jobs`` (a user's ``n_jobs=1`` stays 1).

    ``"cnn"`` is :class:`activemine.deep.TorchClassifier` with its default small
    CNN, and ``"package.module:factory"`` a user's factory (see
    :func:`model_from_factory`); both need the ``torch`` extra only for networks.
    """
    threads = check_n_jobs(n_jobs)
    if isinstance(model, str) and (model == "cnn" or ":" in model):
        model = network_options(model)
    if isinstance(model, str):
        if model == "lightgbm":
            return minority_scaled_lgbm()(**LIGHTGBM_DEFAULTS, random_state=random_state, n_jobs=threads)
        if model == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            # HistGradientBoosting has no n_jobs parameter: its OpenMP threads follow OMP_NUM_THREADS
            return HistGradientBoostingClassifier(max_iter=200, random_state=random_state)
        if model == "logreg":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=random_state))
        raise InputError(f"unknown model {model!r}; expected one of {MODEL_NAMES} or a scikit-learn estimator")
    if not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
        raise InputError(f"model must have fit and predict_proba, got {type(model).__name__}")
    from sklearn.base import clone  # here, so importing activemine does not import scikit-learn

    est = clone(model)
    params = est.get_params()
    if random_state is not None and "random_state" in params:
        est.set_params(random_state=random_state)
    if n_jobs is not None and "n_jobs" in params:
        est.set_params(n_jobs=threads)
    return est


def network_options(model, *, device: str | None = None, epochs: int | None = None, batch_size: int | None = None):
    """The model ``--model`` names, with the network settings given applied, checked before any work.

    ``model``: a name from :data:`MODEL_NAMES`, ``"package.module:factory"`` (a callable that
    returns a scikit-learn classifier, or a torch network: a ``torch.nn.Module`` or a factory of
    one taking ``input_shape`` and ``n_classes``), or an estimator. Returns the name unchanged for a
    built-in non-network model, else an unfitted estimator. A network setting given for a model
    that is not a network, a factory that does not import, and ``device="cuda"`` without a GPU are
    :class:`InputError`.
    """
    given = {k: v for k, v in (("device", device), ("epochs", epochs), ("batch_size", batch_size)) if v is not None}
    if isinstance(model, str) and model == "cnn":
        from activemine.deep import TorchClassifier

        model = TorchClassifier()
    elif isinstance(model, str) and ":" in model:
        model = model_from_factory(model)
    elif isinstance(model, str) and model not in MODEL_NAMES:
        raise InputError(
            f"unknown model {model!r}; expected one of {MODEL_NAMES}, package.module:factory or an estimator"
        )
    is_network = not isinstance(model, str) and all(hasattr(model, a) for a in ("embed", "device", "epochs"))
    if given and not is_network:
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        raise InputError(f"{names} apply to a network model (cnn or a torch factory), not to {_model_label(model)!r}")
    if given:
        model = model.set_params(**given)
    if is_network:
        model.check_params()  # a bad setting or --device cuda without a GPU fails here, before any file is read
    return model


def with_image_shape(model, image_shape):
    """``model`` told the ``(C, H, W)`` shape of image rows when it takes one and has none (a network whose
    ``input_shape`` is None); anything else unchanged. Image sources record the shape; a network cannot
    infer a non-square one from the row length."""
    if image_shape is None or isinstance(model, str) or not hasattr(model, "get_params"):
        return model
    params = model.get_params()
    if "input_shape" not in params or params["input_shape"] is not None:
        return model
    from sklearn.base import clone

    return clone(model).set_params(input_shape=tuple(int(s) for s in image_shape))


def _model_label(model) -> str:
    return model if isinstance(model, str) else type(model).__name__


def model_from_factory(spec: str):
    """``"package.module:name"`` -> an unfitted estimator.

    ``name`` is a ``torch.nn.Module`` subclass or a factory of a network taking ``input_shape`` and/or
    ``n_classes`` (wrapped in :class:`activemine.deep.TorchClassifier`, which calls it under the seed at
    each fit), or a callable of no arguments returning a scikit-learn classifier or a network.
    """
    import importlib
    import inspect

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InputError(f"a model factory is written package.module:name, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure while importing the user's module is a bad --model
        raise InputError(
            f"cannot import module {module_name!r} of model {spec!r}: {type(exc).__name__}: {exc}"
        ) from None
    try:
        factory = getattr(module, attr)
    except AttributeError:
        raise InputError(f"module {module_name!r} has no {attr!r} (model {spec!r})") from None
    if not callable(factory):
        raise InputError(f"model {spec!r} is a {type(factory).__name__}, not a callable")
    takes_shape = False
    try:
        params = inspect.signature(factory).parameters
        takes_shape = bool({"input_shape", "n_classes"} & set(params))
    except (TypeError, ValueError):
        pass
    if takes_shape or _is_module_class(factory):
        from activemine.deep import TorchClassifier

        return TorchClassifier(factory)
    try:
        made = factory()
    except Exception as exc:
        raise InputError(f"calling model factory {spec!r} failed: {type(exc).__name__}: {exc}") from None
    if hasattr(made, "fit") and hasattr(made, "predict_proba"):
        return made
    if _is_module_instance(made):
        from activemine.deep import TorchClassifier

        return TorchClassifier(factory)
    raise InputError(
        f"model factory {spec!r} returned {type(made).__name__}; expected a classifier with fit and "
        "predict_proba or a torch.nn.Module"
    )


def _is_module_class(obj) -> bool:
    import sys

    torch = sys.modules.get("torch")  # a user's network module has imported torch already
    return torch is not None and isinstance(obj, type) and issubclass(obj, torch.nn.Module)


def _is_module_instance(obj) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def predict_proba_aligned(model, X, classes: Sequence) -> np.ndarray:
    """``model.predict_proba(X)`` with columns in the order of ``classes``, ``(n, len(classes))``.

    Classes the model never saw get probability zero; a model class that is
    not in ``classes`` is an error.
    """
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    model_classes = list(getattr(model, "classes_", range(proba.shape[1])))
    classes = list(classes)
    if model_classes == classes:
        return proba
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in model_classes if c not in index]
    if unknown:
        raise UnknownLabelError(f"model predicts classes {unknown} that are not among {classes}")
    out = np.zeros((proba.shape[0], len(classes)), dtype=np.float64)
    out[:, [index[c] for c in model_classes]] = proba
    return out


def stratified_fraction(y, fraction: float, *, rng: np.random.Generator, min_per_class: int = 2) -> np.ndarray:
    """Sorted row indices of a seeded stratified subsample of ``y`` of about ``fraction`` of each class.

    Every class keeps at least ``min_per_class`` rows (or all it has).
    """
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"fraction must be in (0, 1], got {fraction}")
    y = np.asarray(y)
    parts = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        take = min(rows.size, max(min_per_class, int(round(fraction * rows.size))))
        parts.append(rng.choice(rows, size=take, replace=False))
    return np.sort(np.concatenate(parts))


def run_parallel(n_jobs: int | None, calls: list) -> list:
    """Run ``(function, args)`` pairs concurrently with joblib threads; results in call order.

    ``n_jobs=None`` runs one thread per call, capped at :func:`available_cpus`; 1 runs them in turn.
    """
    if len(calls) <= 1 or n_jobs == 1:
        return [fn(*args) for fn, args in calls]
    from joblib import Parallel, delayed

    jobs = min(len(calls), available_cpus() if n_jobs is None else check_n_jobs(n_jobs))
    # threads: LightGBM and numpy release the GIL, and nothing is copied to workers
    return Parallel(n_jobs=jobs, prefer="threads")(delayed(fn)(*args) for fn, args in calls)


def threads_per_task(n_jobs: int | None, tasks: int) -> int:
    """Threads for each of ``tasks`` models fitted at once by :func:`run_parallel` within ``n_jobs`` threads in all."""
    total = check_n_jobs(n_jobs)
    return max(1, total // max(1, min(tasks, total)))
